"""When a transaction is committed: at the batch size, at the interval, at once when nothing is
left, never when empty."""

from __future__ import annotations

import pytest

from streams.engine.transactions import CommitPolicy

pytestmark = pytest.mark.unit

POLICY = CommitPolicy(max_batch=10, commit_interval_ms=100)


def test_an_empty_transaction_is_never_due() -> None:
    assert not POLICY.due(handled=0, open_ms=1e6, nothing_left=True)


def test_a_full_batch_is_due() -> None:
    assert not POLICY.due(handled=9, open_ms=0, nothing_left=False)
    assert POLICY.due(handled=10, open_ms=0, nothing_left=False)


def test_the_interval_makes_it_due_while_records_flow() -> None:
    assert not POLICY.due(handled=1, open_ms=99.9, nothing_left=False)
    assert POLICY.due(handled=1, open_ms=100, nothing_left=False)


def test_nothing_left_commits_at_once() -> None:
    assert POLICY.due(handled=1, open_ms=0, nothing_left=True)
