"""A real Apache Kafka cluster (KRaft) run from Maven Central jars, for local use and tests.

``LocalKafka(state_dir, nodes=1).start()`` returns a :class:`ClusterInfo` whose
``bootstrap_servers`` clients connect to; ``stop()`` ends it. ``air-exstream kafka up|status|down``
drives the same code from the command line. ``LocalKafka(state_dir, security="sasl_ssl")``
serves clients over SASL_SSL instead of PLAINTEXT; ``ClusterInfo.client_security`` then says how
to connect.
"""

from streams.localkafka.errors import LocalKafkaError
from streams.localkafka.provision import KAFKA_VERSION
from streams.localkafka.runner import DEFAULT_STATE_DIR, LocalKafka, running_cluster
from streams.localkafka.security import ClientSecurity, ScramUser, Security
from streams.localkafka.state import ClusterInfo, NodeInfo

__all__ = [
    "DEFAULT_STATE_DIR",
    "KAFKA_VERSION",
    "ClientSecurity",
    "ClusterInfo",
    "LocalKafka",
    "LocalKafkaError",
    "NodeInfo",
    "ScramUser",
    "Security",
    "running_cluster",
]
