"""The audit writer's signing: what it sends, and when, with a fake clock and a fake send."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streams.audit.chain import ChainHead
from streams.audit.checkpoints import decode, signature_problem
from streams.audit.keys import generate, load_public_keys
from streams.audit.signing import AuditSigning, policy_from_environment

pytestmark = pytest.mark.component


class Sent:
    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes]] = []

    async def __call__(self, *, key: bytes, value: bytes) -> None:
        self.records.append((key, value))


def signing(tmp_path: Path, now: list[int], **policy: str) -> tuple[AuditSigning, Any]:
    pair = generate(tmp_path / "a.key", tmp_path / "a.pub")
    env = {"AIR_EXSTREAM_AUDIT_SIGNING_KEY_FILE": str(pair.private_file)}
    env |= {f"AIR_EXSTREAM_AUDIT_CHECKPOINT_{k.upper()}": v for k, v in policy.items()}
    made = AuditSigning.from_environment(env)
    assert made is not None
    made._clock = lambda: now[0]
    return made, load_public_keys([pair.public_file])


async def test_checkpoints_are_sent_signed_after_appends_and_when_idle(tmp_path: Path) -> None:
    now = [1_000]
    audit, keys = signing(tmp_path, now, every_records="2", idle_ms="500", heartbeat_ms="10000")
    sent = Sent()
    await audit.after_append(3, ChainHead(1, "a" * 64), sent)
    assert sent.records == []
    await audit.after_append(3, ChainHead(2, "b" * 64), sent)
    ((key, value),) = sent.records
    assert key == b"3"
    checkpoint = decode(value)
    assert (checkpoint.partition, checkpoint.seq, checkpoint.hash) == (3, 2, "b" * 64)
    assert signature_problem(checkpoint, keys) is None
    await audit.after_append(3, ChainHead(3, "c" * 64), sent)
    await audit.sign_idle(sent)
    assert len(sent.records) == 1  # not idle yet
    now[0] += 500
    await audit.sign_idle(sent)
    assert decode(sent.records[-1][1]).seq == 3
    assert audit.written == 2
    audit.forget([3])
    now[0] += 20_000
    await audit.sign_idle(sent)
    assert audit.written == 2


def test_no_key_means_no_signing_said_once(caplog: pytest.LogCaptureFixture) -> None:
    assert AuditSigning.from_environment({}) is None
    assert "audit checkpoints are off" in caplog.text


def test_the_policy_comes_from_the_environment() -> None:
    policy = policy_from_environment({"AIR_EXSTREAM_AUDIT_CHECKPOINT_EVERY_MS": "250"})
    assert policy.every_ms == 250
    assert policy.every_records == 1000
    with pytest.raises(
        ValueError, match="AIR_EXSTREAM_AUDIT_CHECKPOINT_IDLE_MS must be an integer"
    ):
        policy_from_environment({"AIR_EXSTREAM_AUDIT_CHECKPOINT_IDLE_MS": "soon"})
