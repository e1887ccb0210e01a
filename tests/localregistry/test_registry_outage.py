"""What the project's Confluent wire-format codec makes of a registry it cannot reach."""

from __future__ import annotations

import struct

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from streams.codec import Codec, RegistryFormat
from streams.codec.schemas import default_store
from streams.domain.records import AccountEvent
from streams.errors import AirExstreamError
from streams.localkafka.processes import pick_free_ports

pytestmark = pytest.mark.component


def test_an_unreachable_registry_is_a_retriable_error_not_a_dead_letter_reason() -> None:
    nobody = pick_free_ports(1)[0]  # free on loopback: connections are refused
    url = f"http://127.0.0.1:{nobody}/apis/ccompat/v7"
    info = default_store().for_name("AccountEvent")
    # no retries inside the client: the test is about how the codec classifies the failure
    with SchemaRegistryClient({"url": url, "max.retries": 0}) as client:
        codec = Codec(AccountEvent, info, RegistryFormat(client, "events-value", info))
        with pytest.raises(AirExstreamError) as caught:
            codec.decode(b"\x00" + struct.pack(">I", 1) + b"\x02\x00")
    error = caught.value
    assert error.retriable, f"{type(error).__name__} {getattr(error, 'code', '')}: {error}"
