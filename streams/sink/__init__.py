"""The bulk sink: composition commands from Kafka, submitted to Exstream in batch jobs."""
