"""The worker's decode while the schema registry may be briefly unreachable."""

from __future__ import annotations

import asyncio

import pytest

from streams.codec import DecodeError, RegistryUnavailable
from streams.routing.decoding import decode_waiting

pytestmark = pytest.mark.unit


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_registry_that_comes_back_is_waited_for() -> None:
    clock = _Clock()
    answers: list[Exception | str] = [
        RegistryUnavailable("down"),
        RegistryUnavailable("down"),
        "ok",
    ]

    def decode() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    got = asyncio.run(
        decode_waiting(decode, wait_s=30.0, sleep=clock.sleep, monotonic=clock.monotonic)
    )
    assert got == "ok"
    assert clock.slept == [0.2, 0.4]


def test_a_registry_that_stays_down_is_raised_after_the_wait() -> None:
    clock = _Clock()

    def decode() -> str:
        raise RegistryUnavailable("down")

    with pytest.raises(RegistryUnavailable):
        asyncio.run(
            decode_waiting(decode, wait_s=10.0, sleep=clock.sleep, monotonic=clock.monotonic)
        )
    assert 0 < sum(clock.slept) <= 10.0
    assert max(clock.slept) <= 5.0


def test_a_bad_record_is_not_retried() -> None:
    clock = _Clock()

    def decode() -> str:
        raise DecodeError("BAD_MAGIC", "bad")

    with pytest.raises(DecodeError):
        asyncio.run(
            decode_waiting(decode, wait_s=10.0, sleep=clock.sleep, monotonic=clock.monotonic)
        )
    assert clock.slept == []
