"""The project's Avro schemas: current ones in ``schemas/``, released ones in ``schemas/released/``.

A :class:`SchemaStore` parses every schema once and indexes it by record name and by the
CRC-64-AVRO fingerprint of its parsing canonical form, so a reader can resolve any fingerprint
it meets on the wire to the writer's schema (current or released).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from streams.codec.errors import SchemaNotFound

NAMESPACE = "com.airinc.exstream.v1"


def schemas_dir() -> Path:
    """``AIR_EXSTREAM_SCHEMAS_DIR`` if set, else ``schemas/`` at the repository root."""
    override = os.environ.get("AIR_EXSTREAM_SCHEMAS_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "schemas"


@dataclass(frozen=True, slots=True)
class SchemaInfo:
    name: str
    """Short record name, e.g. ``AccountEvent``; equals the dataclass name."""
    raw: dict[str, Any]
    parsed: Any
    canonical: str
    fingerprint: bytes
    """8 bytes, little-endian CRC-64-AVRO, as single-object encoding carries it."""
    path: Path


def load_schema_file(path: Path) -> SchemaInfo:
    raw = orjson.loads(path.read_bytes())
    parsed = parse_schema(raw)
    canonical = to_parsing_canonical_form(parsed)
    fp = struct.pack("<Q", int(fingerprint(canonical, "CRC-64-AVRO"), 16))
    return SchemaInfo(
        name=str(raw["name"]).rsplit(".", 1)[-1],
        raw=raw,
        parsed=parsed,
        canonical=canonical,
        fingerprint=fp,
        path=path,
    )


class SchemaStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.current: dict[str, SchemaInfo] = {}
        self.by_fingerprint: dict[bytes, SchemaInfo] = {}
        for path in sorted(root.glob("*.avsc")):
            info = load_schema_file(path)
            self.current[info.name] = info
            self.by_fingerprint[info.fingerprint] = info
        released = root / "released"
        if released.is_dir():
            for path in sorted(released.glob("*/*.avsc")):
                info = load_schema_file(path)
                self.by_fingerprint.setdefault(info.fingerprint, info)

    def for_name(self, name: str) -> SchemaInfo:
        try:
            return self.current[name]
        except KeyError:
            raise SchemaNotFound(f"no schema for record {name!r} in {self.root}") from None

    def released_versions(self) -> list[Path]:
        released = self.root / "released"
        if not released.is_dir():
            return []
        return sorted((p for p in released.iterdir() if p.is_dir()), key=_version_key)


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in path.name.split("."))


@cache
def default_store() -> SchemaStore:
    return SchemaStore(schemas_dir())
