"""A real Confluent-compatible schema registry (Apicurio Registry) for local use and tests.

``LocalRegistry(state_dir).start()`` returns a :class:`RegistryInfo` whose ``url`` is what
``KAFKA_SCHEMA_REGISTRY_URL`` should be; ``stop()`` ends it. ``air-exstream registry
up|status|down`` drives the same code from the command line. The release is fetched once from
Maven Central; storage is in memory.
"""

from streams.localregistry.errors import LocalRegistryError
from streams.localregistry.releases import CCOMPAT_PATH, RELEASES, Release
from streams.localregistry.runner import DEFAULT_STATE_DIR, LocalRegistry
from streams.localregistry.state import RegistryInfo

__all__ = [
    "CCOMPAT_PATH",
    "DEFAULT_STATE_DIR",
    "RELEASES",
    "LocalRegistry",
    "LocalRegistryError",
    "RegistryInfo",
    "Release",
]
