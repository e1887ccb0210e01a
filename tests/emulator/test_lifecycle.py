"""Per-channel delivery lifecycles."""

from __future__ import annotations

import random

import pytest

from streams.domain.records import DeliveryStatus as S
from streams.emulator.lifecycle import TERMINAL, Outcomes, plan

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ("PRINT", [S.PRINTED, S.MAILED]),
        ("EMAIL", [S.EMAIL_SENT, S.EMAIL_DELIVERED]),
        ("WEB", [S.WEB_POSTED]),
        ("SMS", [S.SMS_DELIVERED]),
        ("PUSH", [S.PUSH_DELIVERED]),
    ],
)
def test_happy_paths(channel: str, expected: list[S]) -> None:
    steps = plan(channel, Outcomes(open_rate=0.0), random.Random(1))
    assert [s.status for s in steps] == expected
    assert steps[-1].status in TERMINAL


def test_bounce_and_open_and_failure() -> None:
    bounced = plan("EMAIL", Outcomes(bounce_rate=1.0), random.Random(1))
    assert [s.status for s in bounced] == [S.EMAIL_SENT, S.EMAIL_BOUNCED]
    assert bounced[-1].bounce_type in ("HARD", "SOFT")
    opened = plan("EMAIL", Outcomes(open_rate=1.0), random.Random(1))
    assert opened[-1].status is S.EMAIL_OPENED
    failed = plan("PRINT", Outcomes(failure_rate=1.0), random.Random(1))
    assert [s.status for s in failed] == [S.FAILED]
    assert failed[0].exception_code == "DISPATCH_FAILED"
    assert plan("FAX", Outcomes(), random.Random(1))[0].exception_code == "UNSUPPORTED_CHANNEL"


def test_bounce_share() -> None:
    rng = random.Random(2)
    runs = [plan("EMAIL", Outcomes(bounce_rate=0.25), rng) for _ in range(4000)]
    share = sum(r[-1].status is S.EMAIL_BOUNCED for r in runs) / len(runs)
    assert 0.22 < share < 0.28
