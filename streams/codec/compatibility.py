"""Backward compatibility between two versions of an Avro schema: pure functions.

A change is BACKWARD compatible when a reader using the new schema can read every record written
with the old one, following the Avro specification's schema resolution rules:

- primitives must match, or be a promotion the spec allows (int -> long/float/double,
  long -> float/double, float -> double, string <-> bytes);
- records match by full name (or a reader alias); each reader field must exist in the writer
  (by name or alias) with a readable type, or have a default;
- enums: every writer symbol must exist in the reader, unless the reader has a default symbol;
- arrays and maps by their items / values; fixed by name and size;
- a writer union: each branch must be readable; a reader union: some branch must read the writer.

:func:`check_backward` returns the list of problems (empty = compatible), each naming the path
of the field and the rule that breaks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}
PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


@dataclass(frozen=True, slots=True)
class Incompatibility:
    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


class _Names:
    """Named types seen while walking one schema, for resolving references by name."""

    def __init__(self) -> None:
        self.types: dict[str, dict[str, Any]] = {}

    def register(self, schema: dict[str, Any], namespace: str | None) -> str:
        full = _full_name(schema, namespace)
        self.types[full] = schema
        return full

    def resolve(self, schema: Any, namespace: str | None) -> Any:
        if isinstance(schema, str) and schema not in PRIMITIVES:
            full = schema if "." in schema else f"{namespace}.{schema}" if namespace else schema
            return self.types.get(full, self.types.get(schema, schema))
        return schema


def _full_name(schema: dict[str, Any], namespace: str | None) -> str:
    name = str(schema["name"])
    if "." in name:
        return name
    ns = schema.get("namespace", namespace)
    return f"{ns}.{name}" if ns else name


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        return str(schema["type"]) if isinstance(schema["type"], str) else _kind(schema["type"])
    return str(schema)


def _unwrap(schema: Any) -> Any:
    """``{"type": "long"}`` -> ``"long"``; complex types stay as they are."""
    if (
        isinstance(schema, dict)
        and schema.get("type") in PRIMITIVES
        and "logicalType" not in schema
    ):
        return schema["type"]
    return schema


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


class _Checker:
    def __init__(self) -> None:
        self.reader_names = _Names()
        self.writer_names = _Names()
        self.seen: set[tuple[str, str]] = set()

    def check(
        self, reader: Any, writer: Any, path: str, rns: str | None, wns: str | None
    ) -> list[Incompatibility]:
        reader = _unwrap(self.reader_names.resolve(reader, rns))
        writer = _unwrap(self.writer_names.resolve(writer, wns))
        rk, wk = _kind(reader), _kind(writer)

        if wk == "union":
            problems: list[Incompatibility] = []
            for branch in writer:
                problems += self.check(reader, branch, path, rns, wns)
            return problems
        if rk == "union":
            for branch in reader:
                if not self.check(branch, writer, path, rns, wns):
                    return []
            return [
                Incompatibility(path, f"no branch of the new union can read the old {wk} value")
            ]
        if rk in PRIMITIVES or wk in PRIMITIVES:
            if rk == wk or rk in PROMOTIONS.get(wk, frozenset()):
                return []
            return [Incompatibility(path, f"type changed from {wk} to {rk} (not a promotion)")]
        if rk != wk:
            return [Incompatibility(path, f"type changed from {wk} to {rk}")]
        if rk == "record":
            return self._record(reader, writer, path, rns, wns)
        if rk == "enum":
            return self._enum(reader, writer, path, rns, wns)
        if rk == "array":
            return self.check(reader["items"], writer["items"], path + "[]", rns, wns)
        if rk == "map":
            return self.check(reader["values"], writer["values"], path + "{}", rns, wns)
        if rk == "fixed":
            if reader["size"] != writer["size"]:
                return [Incompatibility(path, "fixed size changed")]
            return self._names_match(reader, writer, path, rns, wns)
        return [Incompatibility(path, f"unsupported schema kind {rk}")]

    def _names_match(
        self,
        reader: dict[str, Any],
        writer: dict[str, Any],
        path: str,
        rns: str | None,
        wns: str | None,
    ) -> list[Incompatibility]:
        rfull, wfull = _full_name(reader, rns), _full_name(writer, wns)
        aliases = {
            a if "." in a else f"{reader.get('namespace', rns)}.{a}"
            for a in reader.get("aliases", [])
        }
        if rfull == wfull or wfull in aliases or _short(wfull) in reader.get("aliases", []):
            return []
        return [
            Incompatibility(
                path, f"named type renamed from {_short(wfull)} to {_short(rfull)} without alias"
            )
        ]

    def _record(
        self,
        reader: dict[str, Any],
        writer: dict[str, Any],
        path: str,
        rns: str | None,
        wns: str | None,
    ) -> list[Incompatibility]:
        rfull = self.reader_names.register(reader, rns)
        wfull = self.writer_names.register(writer, wns)
        problems = self._names_match(reader, writer, path, rns, wns)
        if (rfull, wfull) in self.seen:  # recursive types: already being checked
            return problems
        self.seen.add((rfull, wfull))
        rns2 = rfull.rsplit(".", 1)[0] if "." in rfull else None
        wns2 = wfull.rsplit(".", 1)[0] if "." in wfull else None
        writer_fields = {f["name"]: f for f in writer["fields"]}
        for field in reader["fields"]:
            fpath = f"{path}.{field['name']}" if path else field["name"]
            match = writer_fields.get(field["name"])
            if match is None:
                for alias in field.get("aliases", []):
                    match = writer_fields.get(alias)
                    if match is not None:
                        break
            if match is None:
                if "default" not in field:
                    problems.append(
                        Incompatibility(
                            fpath, "field added without a default (old records lack it)"
                        )
                    )
                continue
            problems += self.check(field["type"], match["type"], fpath, rns2, wns2)
        return problems

    def _enum(
        self,
        reader: dict[str, Any],
        writer: dict[str, Any],
        path: str,
        rns: str | None,
        wns: str | None,
    ) -> list[Incompatibility]:
        self.reader_names.register(reader, rns)
        self.writer_names.register(writer, wns)
        problems = self._names_match(reader, writer, path, rns, wns)
        missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if missing and "default" not in reader:
            problems.append(
                Incompatibility(
                    path, f"enum symbols removed without an enum default: {', '.join(missing)}"
                )
            )
        return problems


def check_backward(new: Any, old: Any) -> list[Incompatibility]:
    """Problems a reader with schema ``new`` has reading data written with ``old``."""
    return _Checker().check(new, old, "", None, None)
