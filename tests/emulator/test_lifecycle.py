"""Per-channel Experience Insights event sequences."""

from __future__ import annotations

import random

import pytest

from streams.emulator.lifecycle import Outcomes, failed_type, plan

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ("PRINT", ["Exstream-PrintFile", "Exstream-PrintMail"]),
        ("EMAIL", ["Exstream-Email-Submit", "Exstream-Email-POST"]),
        ("WEB", ["Exstream-Portal"]),
        ("SMS", ["Exstream-SMS"]),
        ("PUSH", ["Exstream-Push"]),
    ],
)
def test_happy_paths(channel: str, expected: list[str]) -> None:
    steps = plan(channel, Outcomes(open_rate=0.0), random.Random(1))
    assert [s.schema_type for s in steps] == expected


def test_bounce_and_open_and_failure() -> None:
    bounced = plan("EMAIL", Outcomes(bounce_rate=1.0), random.Random(1))
    assert [s.schema_type for s in bounced] == ["Exstream-Email-Submit", "Exstream-Email-NDLV"]
    opened = plan("EMAIL", Outcomes(open_rate=1.0), random.Random(1))
    assert opened[-1].schema_type == "Exstream-Email-OPEN"
    failed = plan("PRINT", Outcomes(failure_rate=1.0), random.Random(1))
    assert [s.schema_type for s in failed] == ["Exstream-PrintFile-Failed"]
    assert failed[0].msg is not None
    assert failed[0].msg.startswith("DISPATCH_FAILED")
    fax = plan("FAX", Outcomes(), random.Random(1))[0]
    assert fax.msg is not None
    assert fax.msg.startswith("UNSUPPORTED_CHANNEL")
    assert failed_type("EMAIL") == "Exstream-Email-Failed"


def test_bounce_share() -> None:
    rng = random.Random(2)
    runs = [plan("EMAIL", Outcomes(bounce_rate=0.25), rng) for _ in range(4000)]
    share = sum(r[-1].schema_type == "Exstream-Email-NDLV" for r in runs) / len(runs)
    assert 0.22 < share < 0.28
