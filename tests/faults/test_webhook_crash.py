"""The event receiver is SIGKILLed while Exstream is posting batches of delivery events and
restarted on the same port: Exstream's retries land on the new process and every delivery event
reaches Kafka. The events of batches written just before the kill, whose answers were lost, may
be written twice: the tracking state machine ignores a repeated event id. Reports its figures
(-s)."""

from __future__ import annotations

import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.codec import codec_for
from streams.demo.processes import ServiceProcess, free_port, wait_http
from streams.domain.records import DeliveryEvent
from streams.emulator.design import communication_id
from streams.exstream.driver import batch_file, customer_record
from streams.topic_reader import read_topic
from tests.conftest import KafkaCluster
from tests.sink.test_sink_e2e import SECRET, make_commands
from topology import names
from topology.apply import apply_topology
from topology.model import load_topology

pytestmark = pytest.mark.faults

ITEMS = 600
HOOK_SECRET = "faults-webhook-secret"
BATCH = 20
"""Events per batch the emulator sends (its default is 100): what one lost answer can repeat."""
WORKERS = 4
"""The emulator's event senders (batches in flight at once)."""


def _call(
    url: str, method: str = "GET", body: Any = None, token: str | None = None, raw: bytes = b""
) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = raw or (orjson.dumps(body) if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310
        return orjson.loads(r.read())


def _token(url: str) -> str:
    form = urllib.parse.urlencode(
        {"grant_type": "client_credentials", "client_id": "air-exstream", "client_secret": SECRET}
    ).encode()
    token_url = f"{url}/otdsws/otdstenant/air/oauth2/token"
    with urllib.request.urlopen(token_url, data=form, timeout=10) as r:  # noqa: S310
        return str(orjson.loads(r.read())["access_token"])


@pytest.mark.timeout(600)
def test_receiver_killed_mid_event_batches_loses_no_delivery_event(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    bootstrap = kafka.bootstrap_servers
    prefix = f"hook{uuid.uuid4().hex[:6]}."
    topology = load_topology("local", prefix=prefix)
    apply_topology({"bootstrap.servers": bootstrap}, topology)
    port, hook_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    hook = f"http://127.0.0.1:{hook_port}"
    emulator = ServiceProcess(
        "emulator",
        ["exstream-emulator", "--port", str(port), "--events-url", f"{hook}/hooks/exstream",
         "--events-batch-size", str(BATCH), "--bounce-rate", "0.1"],
        tmp_path,
        {"EXSTREAM_CLIENT_SECRET": SECRET, "EXSTREAM_WEBHOOK_SECRET": HOOK_SECRET},
    )  # fmt: skip
    receiver = ServiceProcess(
        "receiver",
        ["webhook", "--port", str(hook_port), "--prefix", prefix, "--no-apply-topology"],
        tmp_path,
        {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "EXSTREAM_WEBHOOK_SECRET": HOOK_SECRET},
    )
    try:
        emulator.start()
        receiver.start()
        wait_http(f"{url}/_emulator/healthz", emulator)
        wait_http(f"{hook}/healthz", receiver)
        token = _token(url)
        records = [
            customer_record(
                c, exstream_communication_id=communication_id(c.template_id, c.language)
            )
            for c in make_commands(ITEMS, seed=31)
        ]
        batch_url = f"{url}/orchestration/api/v1/inputs/batch/air/air-batch"
        for i in range(0, ITEMS, 50):
            _call(batch_url, "POST", token=token, raw=batch_file(records[i : i + 50]))
        deadline = time.monotonic() + 120
        while _call(f"{url}/_emulator/stats").get("events_delivered", 0) < 400:
            assert time.monotonic() < deadline, receiver.tail()
            time.sleep(0.05)
        receiver.kill()
        killed_at = _call(f"{url}/_emulator/stats")
        time.sleep(2.0)  # callbacks fail meanwhile; Exstream keeps retrying
        receiver.start()
        wait_http(f"{hook}/healthz", receiver)
        deadline = time.monotonic() + 240
        while True:
            stats = _call(f"{url}/_emulator/stats")
            enqueued = stats.get("events_enqueued", 0)
            settled = stats.get("events_delivered", 0) + stats.get("events_abandoned", 0)
            if enqueued and settled >= enqueued and stats["events_queued"] == 0:
                break
            assert time.monotonic() < deadline, f"{stats}\n{receiver.tail()}"
            time.sleep(0.5)
    finally:
        receiver.stop()
        emulator.stop()

    codec = codec_for(DeliveryEvent)
    written = Counter(
        codec.decode(r.value or b"").event_id
        for r in read_topic(bootstrap, topology.name(names.DELIVERY_EVENTS))
    )
    twice = sum(1 for n in written.values() if n > 1)
    failed = sum(v for k, v in stats.items() if k == "event_batch_errors" or "status_5" in k)
    print(
        f"\nwebhook crash test: {enqueued} delivery events, killed after "
        f"{killed_at.get('events_delivered', 0)} deliveries, failed attempts while down "
        f"{failed}, abandoned {stats.get('events_abandoned', 0)}, "
        f"events on Kafka {len(written)}, written twice {twice}"
    )
    assert stats.get("events_abandoned", 0) == 0
    assert len(written) == enqueued, "every delivery event reached Kafka"
    assert twice <= BATCH * WORKERS, "only batches in flight at the kill may be written twice"
