"""``air-exstream webhook`` as a process: topology applied under a prefix, a callback written."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from streams.codec import codec_for
from streams.domain.records import DeliveryEvent
from streams.signing import SIGNATURE_HEADER, sign
from streams.topic_reader import read_topic
from tests.conftest import KafkaCluster
from tests.webhook.ei import batch, ei_event
from topology import names

pytestmark = pytest.mark.e2e

SECRET = "cli-webhook-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the webhook exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:  # noqa: S310
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise AssertionError("the webhook did not become healthy")


def test_the_command_writes_a_callback_to_the_prefixed_topic(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    prefix = f"wh-{uuid.uuid4().hex[:8]}."
    port = free_port()
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "EXSTREAM_WEBHOOK_SECRET_FILE": str(secret_file),
    }
    env.pop("EXSTREAM_WEBHOOK_SECRET", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams", "webhook", "--port", str(port), "--prefix", prefix],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        body = batch(
            ei_event(
                "dev-cli",
                "Exstream-Portal",
                communication_id="com-cli",
                customer_id="cust-cli",
                channel="WEB",
            )
        )
        request = urllib.request.Request(  # noqa: S310
            f"{url}/hooks/exstream",
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(SECRET.encode(), body, int(time.time())),
            },
        )
        with urllib.request.urlopen(request, timeout=30) as r:  # noqa: S310
            assert r.status == 200
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output.decode(errors="replace")
    assert SECRET not in output.decode(errors="replace")

    topic = prefix + names.DELIVERY_EVENTS
    records = list(read_topic(kafka.bootstrap_servers, topic, client_config=kafka.client_config()))
    assert [codec_for(DeliveryEvent).decode(r.value).event_id for r in records] == ["dev-cli"]
    assert records[0].key == b"cust-cli"
