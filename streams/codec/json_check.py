"""A quick schema check of JSON records, generated once per record schema.

JSON records come from outside (Air Inc.'s platform teams publish JSON with a content-type
header), so they are validated against the Avro schema before they become records. fastavro's
``validate`` interprets the schema for every record; :func:`compile_checker` generates Python
code that performs the same checks for the JSON shapes orjson produces (dict, list, str, int,
bool, None), and answers only "surely valid" (True) or "ask fastavro" (False). True implies
that fastavro's ``validate`` passes (each check is at least as strict as fastavro's); on False
the codec runs ``validate``, which names the offending fields or passes after all.
``tests/codec/test_codec_equivalence.py`` checks that True never disagrees with fastavro.

Supported schema types: as :mod:`streams.codec.compiled`; a schema using anything else
compiles to None and its JSON records are always validated by fastavro.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from streams.codec.compiled import INT_MAX, INT_MIN, LONG_MAX, LONG_MIN, Unsupported, kind_of

Checker = Callable[[Any], bool]


class _Checks:
    def __init__(self) -> None:
        self.counter = itertools.count()
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}

    def var(self) -> str:
        return f"v{next(self.counter)}"

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def constant(self, value: Any) -> str:
        name = f"K{len(self.constants)}"
        self.constants[name] = value
        return name

    def value(self, schema: Any, expr: str, indent: int) -> None:
        """Statements that ``return False`` unless ``expr`` surely validates against ``schema``."""
        if isinstance(schema, list):
            if len(schema) != 2 or schema[0] != "null" or schema[1] == "null":
                raise Unsupported("a union other than [null, T]")
            v = self.var()
            self.emit(indent, f"{v} = {expr}")
            self.emit(indent, f"if {v} is not None:")
            self.value(schema[1], v, indent + 1)
            return
        kind = kind_of(schema)
        if kind == "string":
            self.emit(indent, f"if type({expr}) is not str: return False")
        elif kind == "boolean":
            self.emit(indent, f"if type({expr}) is not bool: return False")
        elif kind == "bytes":
            self.emit(indent, f"if type({expr}) is not bytes: return False")
        elif kind in ("long", "int"):
            low, high = (LONG_MIN, LONG_MAX) if kind == "long" else (INT_MIN, INT_MAX)
            v = self.var()
            self.emit(indent, f"{v} = {expr}")
            self.emit(indent, f"if type({v}) is not int or not {low} <= {v} <= {high}:")
            self.emit(indent + 1, "return False")
        elif kind == "map":
            v, k, x = self.var(), self.var(), self.var()
            self.emit(indent, f"{v} = {expr}")
            self.emit(indent, f"if type({v}) is not dict: return False")
            self.emit(indent, f"for {k}, {x} in {v}.items():")
            self.emit(indent + 1, f"if type({k}) is not str: return False")
            self.value(schema["values"], x, indent + 1)
        elif kind == "array":
            v, x = self.var(), self.var()
            self.emit(indent, f"{v} = {expr}")
            self.emit(indent, f"if type({v}) is not list: return False")
            self.emit(indent, f"for {x} in {v}:")
            self.value(schema["items"], x, indent + 1)
        elif kind == "record":
            v = self.var()
            self.emit(indent, f"{v} = {expr}")
            # fastavro gives a "-type" key a meaning of its own: leave such dicts to it
            self.emit(indent, f'if type({v}) is not dict or "-type" in {v}: return False')
            for field in schema["fields"]:
                if "default" in field:
                    default = self.constant(field["default"])
                    self.value(field["type"], f"{v}.get({field['name']!r}, {default})", indent)
                else:
                    self.value(field["type"], f"{v}.get({field['name']!r})", indent)
        else:
            raise Unsupported(f"Avro type {kind!r}")


def compile_checker(schema: Mapping[str, Any]) -> Checker | None:
    """The quick check of JSON records of ``schema``, or None if the schema is unsupported."""
    checks = _Checks()
    try:
        checks.value(dict(schema), "raw", 1)
    except Unsupported:
        return None
    source = "\n".join(["def check(raw):", *checks.lines, "    return True"])
    scope: dict[str, Any] = dict(checks.constants)
    exec(compile(source, "<json check>", "exec"), scope)  # noqa: S102 - source generated here
    checker: Checker = scope["check"]
    return checker
