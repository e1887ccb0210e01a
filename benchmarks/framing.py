"""``python -m benchmarks.framing``: decode rate of one ``AccountEvent`` by framing, on one core.

The project's codec reading its own single-object records, the same codec reading the bytes
confluent-kafka's ``AvroSerializer`` writes (Confluent wire format, schema id resolved once
through a ``mock://`` registry and cached), and confluent-kafka's own ``AvroDeserializer`` on
those bytes (to a dict) for reference. Medians of 3 runs of 50,000 decodes each.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable

from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from streams.codec import Codecs
from streams.codec.codec import registry_client
from streams.codec.schemas import schemas_dir
from streams.domain.records import AccountEvent

EVENT = AccountEvent(
    event_id="evt-1",
    event_type="BILLING_CYCLE_CLOSED",
    customer_id="cust-1",
    account_id="acct-1",
    segment="retail",
    occurred_at=1_764_000_000_000,
    attributes={"cycle": "1"},
)
DECODES = 50_000


def rate(decode: Callable[[], object]) -> float:
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(DECODES):
            decode()
        runs.append(DECODES / (time.perf_counter() - started))
    return statistics.median(runs)


def main() -> None:
    url = "mock://benchmarks-framing"
    client = registry_client(url)
    context = SerializationContext("t", MessageField.VALUE)
    serializer = AvroSerializer(client, (schemas_dir() / "account_event.avsc").read_text())
    confluent = bytes(serializer(dataclasses.asdict(EVENT), context) or b"")
    codec = Codecs(registry_url=url).for_topic("t", AccountEvent)
    single = Codecs().for_topic("t", AccountEvent).encode(EVENT)
    deserializer = AvroDeserializer(client)
    print(f"project codec, single-object:        {rate(lambda: codec.decode(single)):>10,.0f}/s")
    print(
        f"project codec, Confluent wire format: {rate(lambda: codec.decode(confluent)):>10,.0f}/s"
    )
    print(
        "confluent-kafka AvroDeserializer:     "
        f"{rate(lambda: deserializer(confluent, context)):>10,.0f}/s"
    )


if __name__ == "__main__":
    main()
