from __future__ import annotations

import re
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.baseline import ids as first
from streams.domain.ids import alert_id, audit_id, communication_id, digest_id
from streams.domain.records import AuditKind

pytestmark = pytest.mark.unit

ID = re.compile(r"[a-z]{3}-[0-9a-f]{32}")


def test_communication_id_is_stable_across_runs() -> None:
    # a fixed value: changing the derivation would break idempotency of stored commands
    assert communication_id("evt-1", "r-1") == communication_id("evt-1", "r-1")
    assert communication_id("evt-1", "r-1") == digest_id("com", "communication", "evt-1", "r-1")
    assert ID.fullmatch(communication_id("evt-1", "r-1"))
    assert communication_id("evt-1", "r-1").startswith("com-")
    # the value every release has computed (sha256 of ["communication","evt-1","r-1"])
    assert communication_id("evt-1", "r-1") == "com-8140c5a9ac93d03be2a5e943946e0325"


def test_prefixes() -> None:
    assert alert_id("MISSING_TEMPLATE", "r-1").startswith("alr-")
    assert audit_id("COMMAND_EMITTED", "com-x").startswith("aud-")


def test_concatenation_does_not_collide() -> None:
    assert communication_id("ab", "c") != communication_id("a", "bc")
    assert communication_id("a|b", "c") != communication_id("a", "b|c")


def test_namespaces_keep_kinds_apart() -> None:
    assert digest_id("x", "communication", "a", "b")[2:] != digest_id("x", "alert", "a", "b")[2:]
    assert audit_id("SUPPRESSED", "com-1") != audit_id("COMMAND_EMITTED", "com-1")


def test_none_and_text_none_differ() -> None:
    assert alert_id("K", None) != alert_id("K", "None")
    assert alert_id("K", 1) != alert_id("K", "1")


@given(st.text(), st.text())
def test_communication_id_is_deterministic_and_well_formed(event_id: str, rule_id: str) -> None:
    first = communication_id(event_id, rule_id)
    assert first == communication_id(event_id, rule_id)
    assert ID.fullmatch(first)


@given(st.tuples(st.text(), st.text()), st.tuples(st.text(), st.text()))
def test_distinct_inputs_give_distinct_ids(a: tuple[str, str], b: tuple[str, str]) -> None:
    if a != b:
        assert communication_id(*a) != communication_id(*b)


# ------------------------------------------------------------------ same ids as first written

parts = st.one_of(
    st.none(),
    st.text(),
    st.integers(-(2**70), 2**70),  # beyond 64 bits: the json.dumps path
    st.sampled_from(list(AuditKind)),  # enums are passed as parts
    st.booleans(),
)


@given(st.text(max_size=8), st.text(max_size=8), st.lists(parts, max_size=5))
def test_ids_are_those_of_the_first_version(prefix: str, namespace: str, rest: list[Any]) -> None:
    assert digest_id(prefix, namespace, *rest) == first.digest_id(prefix, namespace, *rest)


@given(st.text(), st.text(), st.sampled_from(list(AuditKind)))
def test_inlined_ids_are_those_of_the_first_version(a: str, b: str, kind: AuditKind) -> None:
    assert communication_id(a, b) == first.communication_id(a, b)
    assert audit_id(kind, a) == first.audit_id(kind, a)


def test_a_lone_surrogate_fails_as_it_always_did() -> None:
    for ids in (first, sys.modules[digest_id.__module__]):
        with pytest.raises(UnicodeEncodeError):
            ids.communication_id("evt-\ud800", "rule")
