"""Kafka topics as data, and the code that applies them to a cluster."""
