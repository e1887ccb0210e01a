"""Hypothesis strategies for every domain record, derived from the dataclasses' type hints."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from hypothesis import strategies as st

TEXT = st.text(max_size=20)
LONG = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def for_type(tp: Any) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return st.none() | for_type(inner[0])
    if origin is list:
        return st.lists(for_type(typing.get_args(tp)[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(TEXT, for_type(typing.get_args(tp)[1]), max_size=3)
    if tp is str:
        return TEXT
    if tp is int:
        return LONG
    if tp is bool:
        return st.booleans()
    if tp is bytes:
        return st.binary(max_size=30)
    if dataclasses.is_dataclass(tp):
        return records(tp)
    raise TypeError(tp)


def records(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: for_type(hints[f.name]) for f in dataclasses.fields(cls)}
    return st.builds(cls, **fields)
