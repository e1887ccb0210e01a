"""Streaming integration between Air Inc. and OpenText Exstream over Kafka."""

__version__ = "0.1.0"
