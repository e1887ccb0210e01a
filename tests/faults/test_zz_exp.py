"""Experiment (not committed): the scale-out test with every crashed worker restarted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import tests.faults.test_scale_out as so
from tests.faults.system import System

pytestmark = pytest.mark.faults
RESTARTS: list[tuple[float, str, int | None]] = []


class Supervised(System):
    def check_alive(self) -> None:
        for p in [self.worker, *self.extra_workers]:
            if any(p is r for r in self.retired) or p.alive():
                continue
            RESTARTS.append((time.monotonic(), p.name, p.proc.poll() if p.proc else None))
            print(f"\nRESTART {p.name} exit {RESTARTS[-1][2]} ({p.log})", flush=True)
            p.start()
        super().check_alive()


@pytest.mark.timeout(900)
def test_exp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(so, "System", Supervised)
    try:
        so.test_workers_joining_and_leaving_mid_stream_lose_and_duplicate_nothing(tmp_path)
    finally:
        print(f"\nrestarts: {RESTARTS}")
