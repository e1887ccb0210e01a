"""The file side of a SASL_SSL local cluster: private files, and credentials from the environment.

Kept apart from :mod:`streams.localkafka.security`, whose functions do no I/O.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import SecretStr

from streams.localkafka.errors import LocalKafkaError
from streams.localkafka.security import (
    DEFAULT_USERNAME,
    ScramUser,
    SecurityFiles,
    TlsMaterial,
    new_password,
)


def write_private(path: Path, data: str | bytes) -> None:
    """Write ``path`` readable by its owner only (0600) from the first byte on."""
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        os.write(fd, raw)
    finally:
        os.close(fd)


def write_security_files(
    files: SecurityFiles,
    tls: TlsMaterial,
    client: ScramUser,
    components: Sequence[ScramUser] = (),
) -> None:
    """The CA, the broker's keystore, the client password and each component user's password
    (``users/<name>.password``), in a fresh 0700 directory."""
    files.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    files.directory.chmod(0o700)
    files.ca_file.write_bytes(tls.ca_pem)
    write_private(files.keystore_file, tls.keystore_pem)
    write_private(files.password_file, client.password.get_secret_value() + "\n")
    if components:
        files.users_directory.mkdir(mode=0o700, exist_ok=True)
        files.users_directory.chmod(0o700)
    for user in components:
        write_private(
            files.user_password_file(user.username), user.password.get_secret_value() + "\n"
        )


def read_password(path: Path) -> SecretStr:
    """The password kept in ``path`` (surrounding whitespace stripped, as KafkaSettings does)."""
    try:
        return SecretStr(path.read_text().strip())
    except OSError as exc:
        raise LocalKafkaError(f"cannot read the SASL password file {path}: {exc.strerror}") from exc


def client_user_from_environment(environ: Mapping[str, str]) -> ScramUser:
    """The client user a SASL_SSL local cluster is to create, from the same variables clients
    read: ``KAFKA_SASL_USERNAME`` (default ``air-exstream``) and ``KAFKA_SASL_PASSWORD_FILE`` or
    ``KAFKA_SASL_PASSWORD``; a random password when neither is set."""
    file = environ.get("KAFKA_SASL_PASSWORD_FILE")
    clear = environ.get("KAFKA_SASL_PASSWORD")
    if file and clear:
        raise LocalKafkaError("set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both")
    if file:
        password = read_password(Path(file))
    elif clear:
        password = SecretStr(clear)
    else:
        password = new_password()
    return ScramUser(
        username=environ.get("KAFKA_SASL_USERNAME") or DEFAULT_USERNAME, password=password
    )
