"""Reading a store's RocksDB files the way an operator's tool would: read-only, after the store
closed them (the tests compare what a store left on disk with what it should hold)."""

from __future__ import annotations

from pathlib import Path

from rocksdict import AccessType, Rdict

from streams.engine.rocksdb import rocksdb_options


def read_closed(path: Path) -> dict[bytes, bytes]:
    """Every (key, value) of the closed database at ``path``, by a read-only reader of its own."""
    db = Rdict(str(path), rocksdb_options(), access_type=AccessType.read_only())
    try:
        return dict(db.items())
    finally:
        db.close()
