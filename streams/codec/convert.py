"""Dataclass <-> Avro-shaped dict conversion, compiled once per record class.

Decoding and encoding sit on the hot path (every record of every topic), so the per-class plan
(which fields hold nested records or lists of them) is computed once, not per record.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any

ToDict = Callable[[Any], dict[str, Any]]
FromDict = Callable[[dict[str, Any]], Any]


def _nested_class(tp: Any) -> tuple[type | None, bool]:
    """The dataclass inside ``tp`` (through Optional / list), and whether it is a list."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _nested_class(inner[0]) if len(inner) == 1 else (None, False)
    if origin is list:
        cls, _ = _nested_class(typing.get_args(tp)[0])
        return cls, cls is not None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return tp, False
    return None, False


_TO_DICT: dict[type, ToDict] = {}
_FROM_DICT: dict[type, FromDict] = {}


def to_dict_fn(cls: type) -> ToDict:
    fn = _TO_DICT.get(cls)
    if fn is None:
        fn = _TO_DICT[cls] = _compile_to_dict(cls)
    return fn


def from_dict_fn(cls: type) -> FromDict:
    fn = _FROM_DICT.get(cls)
    if fn is None:
        fn = _FROM_DICT[cls] = _compile_from_dict(cls)
    return fn


def _compile_to_dict(cls: type) -> ToDict:
    hints = typing.get_type_hints(cls)
    plain: list[str] = []
    nested: list[tuple[str, ToDict, bool]] = []
    for f in dataclasses.fields(cls):
        inner, is_list = _nested_class(hints[f.name])
        if inner is None:
            plain.append(f.name)
        else:
            nested.append((f.name, to_dict_fn(inner), is_list))

    def convert(obj: Any) -> dict[str, Any]:
        out = {name: getattr(obj, name) for name in plain}
        for name, fn, is_list in nested:
            value = getattr(obj, name)
            if value is None:
                out[name] = None
            elif is_list:
                out[name] = [fn(v) for v in value]
            else:
                out[name] = fn(value)
        return out

    return convert


def _compile_from_dict(cls: type) -> FromDict:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    nested: list[tuple[str, FromDict, bool]] = []
    for f in dataclasses.fields(cls):
        inner, is_list = _nested_class(hints[f.name])
        if inner is not None:
            nested.append((f.name, from_dict_fn(inner), is_list))

    def convert(data: dict[str, Any]) -> Any:
        kwargs = {name: data[name] for name in names if name in data}
        for name, fn, is_list in nested:
            value = kwargs.get(name)
            if value is None:
                continue
            kwargs[name] = [fn(v) for v in value] if is_list else fn(value)
        return cls(**kwargs)

    return convert
