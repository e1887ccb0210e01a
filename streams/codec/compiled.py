"""Avro binary bodies written and read by Python code generated once per record class.

fastavro interprets the schema for every record it writes or reads and needs a dict per record
(plus the dataclass <-> dict conversion around it); for the schemas of this project that costs
more than the bytes themselves. :func:`compile_encoder` and :func:`compile_decoder` turn one
record schema (and its dataclass, whose fields mirror it) into straight-line Python source,
compiled once, that goes from the dataclass to the Avro body and back.

They are a fast path, never the only path. Each handles the canonical, well-typed case and
raises :class:`Fallback` for anything else (a value of an unexpected type, an integer beyond 64
bits, a union branch index other than 0 or 1, a boolean byte other than 0 or 1, a negative
length or block count, a truncated body, bytes that are not UTF-8, trailing bytes), upon which
the codec takes fastavro's path, which then encodes, decodes or fails exactly as it always did.
Whenever the fast path succeeds its result equals fastavro's: the same bytes when writing, an
equal record with its maps in the same order when reading (``tests/codec/
test_codec_equivalence.py`` compares them on generated records and on mutated bytes).

Supported schema types: record, string, bytes, long, int, boolean, map, array and unions of
``null`` with one other type, without logical types. A schema using anything else (including a
reference to a named type by its name) compiles to None: the codec then always uses fastavro
for it.
"""

from __future__ import annotations

import dataclasses
import itertools
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from streams.errors import AirExstreamError

Encoder = Callable[[Any], bytes]
Decoder = Callable[[bytes, int], Any]
"""``decoder(data, offset)``: the record whose body starts at ``offset`` and ends the data."""

LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
_BYTES = tuple(bytes((b,)) for b in range(128))
_SMALL = 4096
SIZES = tuple(
    _BYTES[n << 1] if n < 64 else bytes(((n << 1) & 0x7F | 0x80, n >> 6)) for n in range(_SMALL)
)
"""Zigzag varints of the lengths 0..4095, precomputed. A longer string raises IndexError in the
generated code, and the codec then takes fastavro's path."""
BOOLEAN: Mapping[object, bytes] = {True: b"\x01", False: b"\x00"}
"""Booleans (and what fastavro writes for 1 and 0); any other value raises KeyError: fallback."""
_LONG_MEMO: dict[int, bytes] = {}
_LONG_MEMO_LIMIT = 4096


class Fallback(AirExstreamError):
    """The fast path does not handle this value or these bytes: use fastavro's path."""


class Unsupported(AirExstreamError):
    """The schema uses a type the generator does not handle."""


def long_bytes(n: int) -> bytes:
    """The zigzag varint of a long (raises :class:`Fallback` for a non-int or beyond 64 bits)."""
    if type(n) is not int or n < LONG_MIN or n > LONG_MAX:
        raise Fallback
    z = (n << 1) ^ (n >> 63)
    if z < 0x80:
        return _BYTES[z]
    out = []
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def long_piece(n: int) -> bytes:
    """:func:`long_bytes`, remembered: the timestamps of one event recur in its records."""
    found = _LONG_MEMO.get(n)
    if found is None or type(n) is not int:
        found = long_bytes(n)
        if len(_LONG_MEMO) >= _LONG_MEMO_LIMIT:
            _LONG_MEMO.clear()
        _LONG_MEMO[n] = found
    return found


def int_piece(n: int) -> bytes:
    if type(n) is not int or n < INT_MIN or n > INT_MAX:
        raise Fallback
    return long_bytes(n)


def size_bytes(n: int) -> bytes:
    """The zigzag varint of a non-negative length or count."""
    return SIZES[n] if n < _SMALL else long_bytes(n)


def bytes_value(value: bytes) -> bytes:
    if type(value) is not bytes:
        raise Fallback
    return value


_SIZE_TEXT = tuple(b.decode("latin-1") for b in SIZES)
""":data:`SIZES` as text, one character per byte (latin-1)."""


def text_map(m: dict[str, str]) -> bytes:
    """A map of strings: one block, then the end marker."""
    if type(m) is not dict:
        raise Fallback
    if not m:
        return b"\x00"
    # ASCII keys and values (the usual case) have as many bytes as characters: the block can
    # be built as text, one character per byte, and encoded once (the joins also insist on str)
    if ("".join(m) + "".join(m.values())).isascii():
        text = "".join([f"{_SIZE_TEXT[len(k)]}{k}{_SIZE_TEXT[len(v)]}{v}" for k, v in m.items()])
        return size_bytes(len(m)) + text.encode("latin-1") + b"\x00"
    parts = [size_bytes(len(m))]
    for k, v in m.items():
        kb = k.encode()
        vb = v.encode()
        parts += (SIZES[len(kb)], kb, SIZES[len(vb)], vb)
    parts.append(b"\x00")
    return b"".join(parts)


def text_list(items: list[str]) -> bytes:
    """An array of strings: one block, then the end marker."""
    if type(items) is not list:
        raise Fallback
    if not items:
        return b"\x00"
    parts = [size_bytes(len(items))]
    for item in items:
        b = item.encode()
        parts += (SIZES[len(b)], b)
    parts.append(b"\x00")
    return b"".join(parts)


def read_long(data: bytes, pos: int) -> tuple[int, int]:
    """A zigzag varint at ``pos``: (value, next position)."""
    b = data[pos]
    pos += 1
    z = b & 0x7F
    shift = 7
    while b & 0x80:
        if shift > 63:
            raise Fallback
        b = data[pos]
        pos += 1
        z |= (b & 0x7F) << shift
        shift += 7
    if z >> 64:
        raise Fallback
    return (z >> 1) ^ -(z & 1), pos


def read_size(data: bytes, pos: int) -> tuple[int, int]:
    """A non-negative length or count at ``pos``."""
    b = data[pos]
    if b < 0x80 and not b & 1:
        return b >> 1, pos + 1
    n, pos = read_long(data, pos)
    if n < 0:
        raise Fallback
    return n, pos


def read_text(data: bytes, pos: int) -> tuple[str, int]:
    b = data[pos]
    if b < 0x80 and not b & 1:
        pos += 1
        end = pos + (b >> 1)
    else:
        n, pos = read_size(data, pos)
        end = pos + n
    if end > len(data):
        raise Fallback
    return data[pos:end].decode(), end


def read_bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    n, pos = read_size(data, pos)
    end = pos + n
    if end > len(data):
        raise Fallback
    return data[pos:end], end


def read_int(data: bytes, pos: int) -> tuple[int, int]:
    n, pos = read_long(data, pos)
    if n < INT_MIN or n > INT_MAX:
        raise Fallback
    return n, pos


def read_boolean(data: bytes, pos: int) -> tuple[bool, int]:
    b = data[pos]
    if b > 1:
        raise Fallback
    return b == 1, pos + 1


_HELPERS: Mapping[str, object] = {
    "Fallback": Fallback,
    "S": SIZES,
    "BOOLEAN": BOOLEAN,
    "long_piece": long_piece,
    "int_piece": int_piece,
    "size_bytes": size_bytes,
    "bytes_value": bytes_value,
    "text_map": text_map,
    "text_list": text_list,
    "read_long": read_long,
    "read_size": read_size,
    "read_text": read_text,
    "read_bytes": read_bytes,
    "read_int": read_int,
    "read_boolean": read_boolean,
}


def _fields_of(cls: type) -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _record_class(cls: type, record: Mapping[str, Any], namespace: dict[str, Any]) -> str:
    """The name under which ``cls`` is bound in the generated module's namespace."""
    names = [f["name"] for f in record["fields"]]
    if not dataclasses.is_dataclass(cls) or list(_fields_of(cls)) != names:
        raise Unsupported(f"{cls.__name__} does not mirror its schema field for field")
    name = f"C_{cls.__name__}_{len(namespace)}"
    namespace[name] = cls
    return name


def _nested(cls: type, field: str) -> type:
    """The dataclass held by ``cls.field`` (through Optional and list)."""
    hint = typing.get_type_hints(cls)[field]
    while True:
        origin = typing.get_origin(hint)
        if origin in (typing.Union, types.UnionType):
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        elif origin is list:
            hint = typing.get_args(hint)[0]
        elif isinstance(hint, type) and dataclasses.is_dataclass(hint):
            return hint
        else:
            raise Unsupported(f"{cls.__name__}.{field} holds no dataclass")


class _Writer:
    """Generates one function per record type: ``b"".join`` of a tuple of the field encodings
    (building the tuple in one go costs half of appending each piece to a list)."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self.counter = itertools.count()
        self.functions: list[str] = []

    def var(self) -> str:
        return f"v{next(self.counter)}"

    def pieces(self, schema: Any, expr: str, cls: type | None) -> list[str]:
        """Expressions whose bytes, concatenated, are the encoding of ``expr``."""
        if isinstance(schema, list) or kind_of(schema) not in ("string", "bytes"):
            return [self.single(schema, expr, cls)]
        v = self.var()
        value = f"({expr}).encode()" if kind_of(schema) == "string" else f"bytes_value({expr})"
        return [f"S[len({v} := {value})]", v]

    def single(self, schema: Any, expr: str, cls: type | None) -> str:
        """One expression: the encoding of ``expr`` as bytes."""
        if isinstance(schema, list):
            if len(schema) != 2 or schema[0] != "null" or schema[1] == "null":
                raise Unsupported("a union other than [null, T]")
            v = self.var()
            inner = " + ".join(self.pieces(schema[1], v, cls))
            return f'(b"\\x00" if ({v} := {expr}) is None else b"\\x02" + {inner})'
        kind = kind_of(schema)
        if kind in ("string", "bytes"):
            return " + ".join(self.pieces(schema, expr, cls))
        if kind == "long":
            return f"long_piece({expr})"
        if kind == "int":
            return f"int_piece({expr})"
        if kind == "boolean":
            return f"BOOLEAN[{expr}]"
        if kind == "map" and schema["values"] == "string":
            return f"text_map({expr})"
        if kind == "array" and schema["items"] == "string":
            return f"text_list({expr})"
        if kind in ("map", "array"):
            return f"{self.block_function(schema, cls)}({expr})"
        if kind == "record":
            return f"{self.record_function(schema, cls)}({expr})"
        raise Unsupported(f"Avro type {kind!r}")

    def block_function(self, schema: Mapping[str, Any], cls: type | None) -> str:
        name = f"blocks_{len(self.functions)}"
        self.functions.append("")  # reserve the slot: nested functions come after
        slot = len(self.functions) - 1
        if schema["type"] == "map":
            item = " + ".join(["S[len(kb := k.encode())]", "kb"])
            value = self.single(schema["values"], "x", cls)
            body = [
                f"def {name}(m):",
                "    if type(m) is not dict: raise Fallback",
                '    if not m: return b"\\x00"',
                f'    return b"".join((size_bytes(len(m)), *[{item} + {value} '
                'for k, x in m.items()], b"\\x00"))',
            ]
        else:
            value = self.single(schema["items"], "x", cls)
            body = [
                f"def {name}(m):",
                "    if type(m) is not list: raise Fallback",
                '    if not m: return b"\\x00"',
                f'    return b"".join((size_bytes(len(m)), *[{value} for x in m], b"\\x00"))',
            ]
        self.functions[slot] = "\n".join(body)
        return name

    def record_function(self, schema: Mapping[str, Any], cls: type | None) -> str:
        if cls is None:
            raise Unsupported("a record without its dataclass")
        cname = _record_class(cls, schema, self.namespace)
        name = f"record_{len(self.functions)}"
        self.functions.append("")
        slot = len(self.functions) - 1
        pieces: list[str] = []
        for field in schema["fields"]:
            inner = _nested(cls, field["name"]) if _holds_record(field["type"]) else None
            pieces += self.pieces(field["type"], f"o.{field['name']}", inner)
        self.functions[slot] = "\n".join(
            [
                f"def {name}(o):",
                f"    if type(o) is not {cname}: raise Fallback",
                f'    return b"".join(({", ".join(pieces)},))',
            ]
        )
        return name


def kind_of(schema: Any) -> str:
    """The Avro type name of a (non-union) schema; :class:`Unsupported` for logical types,
    whose values fastavro converts (a timestamp-millis long reads as a datetime)."""
    if isinstance(schema, dict):
        if "logicalType" in schema:
            raise Unsupported(f"logical type {schema['logicalType']!r}")
        return str(schema["type"])
    return str(schema)


def _holds_record(schema: Any) -> bool:
    if isinstance(schema, list):
        return any(_holds_record(s) for s in schema)
    if isinstance(schema, dict):
        kind = schema["type"]
        if kind == "record":
            return True
        if kind == "array":
            return _holds_record(schema["items"])
        if kind == "map":
            return _holds_record(schema["values"])
    return False


class _Reader:
    """Generates the statements that read one value into a local variable."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self.counter = itertools.count()
        self.lines: list[str] = []

    def var(self) -> str:
        return f"v{next(self.counter)}"

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def value(self, schema: Any, target: str, indent: int, cls: type | None) -> None:
        if isinstance(schema, list):
            if len(schema) != 2 or schema[0] != "null" or schema[1] == "null":
                raise Unsupported("a union other than [null, T]")
            b = self.var()
            self.emit(indent, f"{b} = d[p]")
            self.emit(indent, "p += 1")
            self.emit(indent, f"if {b} == 0:")
            self.emit(indent + 1, f"{target} = None")
            self.emit(indent, f"elif {b} == 2:")
            self.value(schema[1], target, indent + 1, cls)
            self.emit(indent, "else:")
            self.emit(indent + 1, "raise Fallback")
            return
        kind = kind_of(schema)
        if kind == "string":  # inline for lengths below 64, the usual case
            b, e = self.var(), self.var()
            self.emit(indent, f"{b} = d[p]")
            self.emit(indent, f"if {b} < 0x80 and not {b} & 1:")
            self.emit(indent + 1, f"{e} = p + 1 + ({b} >> 1)")
            self.emit(indent + 1, f"if {e} > n: raise Fallback")
            self.emit(indent + 1, f"{target} = d[p + 1:{e}].decode()")
            self.emit(indent + 1, f"p = {e}")
            self.emit(indent, "else:")
            self.emit(indent + 1, f"{target}, p = read_text(d, p)")
        elif kind == "bytes":
            self.emit(indent, f"{target}, p = read_bytes(d, p)")
        elif kind == "long":
            self.emit(indent, f"{target}, p = read_long(d, p)")
        elif kind == "int":
            self.emit(indent, f"{target}, p = read_int(d, p)")
        elif kind == "boolean":
            self.emit(indent, f"{target}, p = read_boolean(d, p)")
        elif kind in ("map", "array"):
            n, i, k, x = self.var(), self.var(), self.var(), self.var()
            self.emit(indent, f"{target} = {{}}" if kind == "map" else f"{target} = []")
            self.emit(indent, f"{n}, p = read_size(d, p)")
            self.emit(indent, f"while {n}:")
            self.emit(indent + 1, f"for {i} in range({n}):")
            if kind == "map":
                self.value("string", k, indent + 2, None)
                self.value(schema["values"], x, indent + 2, cls)
                self.emit(indent + 2, f"{target}[{k}] = {x}")
            else:
                self.value(schema["items"], x, indent + 2, cls)
                self.emit(indent + 2, f"{target}.append({x})")
            self.emit(indent + 1, f"{n}, p = read_size(d, p)")
        elif kind == "record":
            if cls is None:
                raise Unsupported("a record without its dataclass")
            cname = _record_class(cls, schema, self.namespace)
            args = []
            for field in schema["fields"]:
                local = self.var()
                inner = _nested(cls, field["name"]) if _holds_record(field["type"]) else None
                self.value(field["type"], local, indent, inner)
                args.append(f"{field['name']}={local}")
            self.emit(indent, f"{target} = {cname}({', '.join(args)})")
        else:
            raise Unsupported(f"Avro type {kind!r}")


def _build(source: str, namespace: dict[str, Any], name: str) -> Any:
    scope = {**_HELPERS, **namespace}
    exec(compile(source, f"<avro {name}>", "exec"), scope)  # noqa: S102 - source generated here
    return scope[name]


def compile_encoder(schema: Mapping[str, Any], cls: type) -> Encoder | None:
    """The body writer of record ``schema`` for instances of ``cls``, or None if unsupported."""
    namespace: dict[str, Any] = {}
    writer = _Writer(namespace)
    try:
        top = writer.record_function(dict(schema), cls)
    except Unsupported:
        return None
    encoder: Encoder = _build("\n\n".join(writer.functions), namespace, top)
    return encoder


def compile_decoder(schema: Mapping[str, Any], cls: type) -> Decoder | None:
    """The body reader of record ``schema`` into ``cls``, or None if unsupported."""
    namespace: dict[str, Any] = {}
    reader = _Reader(namespace)
    try:
        reader.value(dict(schema), "r", 1, cls)
    except Unsupported:
        return None
    tail = ["    if p != n:", "        raise Fallback", "    return r"]
    source = "\n".join(["def decode(d, p):", "    n = len(d)", *reader.lines, *tail])
    decoder: Decoder = _build(source, namespace, "decode")
    return decoder
