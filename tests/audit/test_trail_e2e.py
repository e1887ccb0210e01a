"""Full and incremental verification of a trail on the real broker, and rotation of the key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from streams.audit.checkpoints import CheckpointPolicy, CheckpointSigner
from streams.audit.keys import generate, load_public_keys, signing_key_from_environment
from streams.audit.trail import TrustedState, TrustedStateError, verify_trail
from tests.audit.conftest import Trail
from tests.audit.forgery import status_record

pytestmark = pytest.mark.e2e


def test_incremental_verification_reads_only_what_came_after_the_trusted_checkpoint(
    trail_factory: Callable[..., Trail], tmp_path: Path
) -> None:
    trail = trail_factory(every_records=10)
    trail.writer.write([status_record(i) for i in range(45)])
    state = tmp_path / "trusted.json"
    first = trail.verify("--save-checkpoint", str(state))
    assert first.exit_code == 0, first.output
    assert "40 verified, 5 unconfirmed, 0 violation(s) in 45 records read" in first.output
    saved = orjson.loads(state.read_bytes())
    assert saved["partitions"]["0"]["offset"] == 39

    trail.writer.write([status_record(i) for i in range(45, 72)])  # signed at 50, 60, 70
    again = trail.verify("--from-checkpoint", str(state), "--save-checkpoint", str(state))
    assert again.exit_code == 0, again.output
    assert "from the trusted checkpoints" in again.output
    # the trusted record (seq 40), then the 32 after it: 30 newly verified, 2 unconfirmed
    assert "30 verified, 2 unconfirmed, 0 violation(s) in 33 records read" in again.output
    full = trail.verify()
    assert "70 verified, 2 unconfirmed, 0 violation(s) in 72 records read" in full.output
    assert orjson.loads(state.read_bytes())["partitions"]["0"]["offset"] == 69


def test_a_rotated_key_verifies_with_both_public_keys(
    trail_factory: Callable[..., Trail], tmp_path: Path
) -> None:
    trail = trail_factory(every_records=5)
    trail.writer.write([status_record(i) for i in range(10)])
    new = generate(tmp_path / "new.key", tmp_path / "new.pub")
    key = signing_key_from_environment(
        {"AIR_EXSTREAM_AUDIT_SIGNING_KEY_FILE": str(new.private_file)}
    )
    assert key is not None
    trail.writer.signer = CheckpointSigner(key, None, CheckpointPolicy(every_records=5))
    trail.writer.write([status_record(i) for i in range(10, 20)])

    old_only = trail.verify()
    assert old_only.exit_code == 1  # the new key's checkpoints are not accepted yet
    assert f"signed with key id {new.key_id}, which is not an accepted public key" in (
        old_only.output
    )
    both = trail.verify("--public-key", str(new.public_file))
    assert both.exit_code == 0, both.output
    assert f"key {new.key_id}" in both.output
    assert "20 verified, 0 unconfirmed" in both.output


def test_a_trusted_state_signed_by_an_unknown_key_is_refused(
    trail_factory: Callable[..., Trail], tmp_path: Path
) -> None:
    trail = trail_factory(every_records=5)
    trail.writer.write([status_record(i) for i in range(5)])
    keys = load_public_keys([trail.keys.public_file])
    report = verify_trail(
        trail.kafka.bootstrap_servers, trail.audit_topic, trail.checkpoints_topic, keys
    )
    state = tmp_path / "state.json"
    report.trusted_state().save(state)
    other = generate(tmp_path / "o.key", tmp_path / "o.pub")
    with pytest.raises(TrustedStateError, match="not an accepted public key"):
        TrustedState.load(state, load_public_keys([other.public_file]))
    refused = trail.verify(
        "--from-checkpoint", str(state), "--public-key", str(other.public_file), signed=False
    )
    assert refused.exit_code == 1
