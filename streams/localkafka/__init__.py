"""A real Apache Kafka broker (KRaft) run from Maven Central jars, for local use and tests."""

from streams.localkafka.runner import ClusterInfo, LocalKafka, running_cluster

__all__ = ["ClusterInfo", "LocalKafka", "running_cluster"]
