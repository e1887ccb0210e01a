"""Checkpoint keys: generated, read from files and the environment, never shown."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from streams.audit.checkpoints import key_id_of
from streams.audit.cli import audit as audit_cli
from streams.audit.keys import (
    CheckpointKeyError,
    generate,
    load_public_keys,
    signing_key_from_environment,
)

pytestmark = pytest.mark.component


def test_generate_writes_a_private_0600_file_and_a_public_one(tmp_path: Path) -> None:
    pair = generate(tmp_path / "k" / "audit.key", tmp_path / "k" / "audit.pub")
    assert stat.S_IMODE(pair.private_file.stat().st_mode) == 0o600
    key = signing_key_from_environment(
        {"AIR_EXSTREAM_AUDIT_SIGNING_KEY_FILE": str(pair.private_file)}
    )
    assert key is not None
    assert key_id_of(key.public_key()) == pair.key_id
    assert list(load_public_keys([pair.public_file])) == [pair.key_id]
    with pytest.raises(CheckpointKeyError, match="never overwritten"):
        generate(pair.private_file, tmp_path / "other.pub")


def test_keygen_prints_the_key_id_and_never_the_key(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        audit_cli,
        [
            "keygen",
            "--private-key",
            str(tmp_path / "a.key"),
            "--public-key",
            str(tmp_path / "a.pub"),
        ],
    )
    assert result.exit_code == 0, result.output
    secret = (tmp_path / "a.key").read_text()
    body = "".join(secret.splitlines()[1:-1])
    assert body not in result.output
    assert "PRIVATE KEY" not in result.output
    (kid,) = load_public_keys([tmp_path / "a.pub"])
    assert f"key id {kid}" in result.output


def test_one_file_may_hold_several_public_keys_for_a_rotation(tmp_path: Path) -> None:
    old = generate(tmp_path / "old.key", tmp_path / "old.pub")
    new = generate(tmp_path / "new.key", tmp_path / "new.pub")
    both = tmp_path / "accepted.pem"
    both.write_bytes(old.public_file.read_bytes() + new.public_file.read_bytes())
    assert set(load_public_keys([both])) == {old.key_id, new.key_id}


def test_the_key_may_come_as_text_and_not_both_ways(tmp_path: Path) -> None:
    pair = generate(tmp_path / "a.key", tmp_path / "a.pub")
    text = pair.private_file.read_text()
    key = signing_key_from_environment({"AIR_EXSTREAM_AUDIT_SIGNING_KEY": text})
    assert key is not None
    assert signing_key_from_environment({}) is None
    with pytest.raises(CheckpointKeyError, match="not both"):
        signing_key_from_environment(
            {
                "AIR_EXSTREAM_AUDIT_SIGNING_KEY": text,
                "AIR_EXSTREAM_AUDIT_SIGNING_KEY_FILE": str(pair.private_file),
            }
        )


def test_unusable_keys_are_clear_errors_that_show_no_key(tmp_path: Path) -> None:
    ec = generate_private_key(SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    path = tmp_path / "ec.key"
    path.write_bytes(ec)
    with pytest.raises(CheckpointKeyError, match="not an Ed25519 key") as caught:
        signing_key_from_environment({"AIR_EXSTREAM_AUDIT_SIGNING_KEY_FILE": str(path)})
    assert ec.decode() not in str(caught.value)
    with pytest.raises(CheckpointKeyError, match="cannot read"):
        signing_key_from_environment({"AIR_EXSTREAM_AUDIT_SIGNING_KEY_FILE": str(tmp_path / "no")})
    junk = tmp_path / "junk.pub"
    junk.write_text("hello")
    with pytest.raises(CheckpointKeyError, match="holds no PEM public key"):
        load_public_keys([junk])
