"""The one use of aiokafka's internals: a topic's partitions asked of the broker.

aiokafka's public ``partitions_for_topic`` answers from the metadata the consumer already holds
(None for a topic it has not subscribed to), and ``topics()`` fetches every topic's metadata but
returns only the names. The readers of whole topics (the reference views, the sink's intents)
need the partitions of a topic they assign themselves, so they ask through the client that
``topics()`` uses. The module refuses to load with an aiokafka minor release it was not read
against.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from streams.errors import AirExstreamError

SUPPORTED_AIOKAFKA = "0.14."
"""The aiokafka release line whose ``AIOKafkaConsumer._client`` this module was read in."""


class UnsupportedAiokafka(AirExstreamError):
    """The installed aiokafka is not the release line this module was written against."""

    code = "UNSUPPORTED_AIOKAFKA"


def check_aiokafka_version(installed: str) -> None:
    """Raise :class:`UnsupportedAiokafka` unless ``installed`` is of :data:`SUPPORTED_AIOKAFKA`."""
    if not installed.startswith(SUPPORTED_AIOKAFKA):
        raise UnsupportedAiokafka(
            f"aiokafka {installed} is installed, but streams/aiokafka_compat.py was read against "
            f"{SUPPORTED_AIOKAFKA}x: install that, or read it again before changing it"
        )


check_aiokafka_version(version("aiokafka"))


async def partitions_of(consumer: Any, topic: str) -> set[int]:
    """The partitions of ``topic`` in fresh broker metadata (empty while it has none yet)."""
    cluster = await consumer._client.fetch_all_metadata()
    return set(cluster.partitions_for_topic(topic) or ())
