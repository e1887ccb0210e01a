"""The benchmark report: the Markdown table from result dicts, and the plots it renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from benchmarks import report

pytestmark = pytest.mark.unit

MACHINE = {"cpus": 2, "python": "3.11.7", "platform": "Linux", "processor": "x86_64"}

ROUTING: dict[str, Any] = {
    "benchmark": "routing",
    "unit": "events/s",
    "measured": {"what": "routing worker", "value": 842.4, "runs": [800.0, 842.4, 900.0]},
    "baseline": {"what": "passthrough", "value": 33327.0, "runs": [33327.0]},
    "ratio": 0.02528,
    "config": {
        "events": 20000,
        "invalid_share": 0.03,
        "worker": "exactly_once",
        "strict": True,
        "window": "10 %..100 %",
    },
    "machine": MACHINE,
}
SCALING: dict[str, Any] = {
    "benchmark": "routing_scaling",
    "unit": "events/s",
    "measured": {"what": "4 workers", "value": 650.0},
    "baseline": {"what": "1 worker", "value": 700.0},
    "ratio": 0.9285714,
    "series": [
        {"workers": 1, "value": 700.0},
        {"workers": 2, "value": 720.5},
        {"workers": 4, "value": 650.0},
    ],
    "config": {"events": 10000, "workers": [1, 2, 4], "note": "a | b"},
    "machine": MACHINE,
}
ONDEMAND: dict[str, Any] = {
    "benchmark": "ondemand",
    "unit": "ms p50",
    "measured": {"what": "service", "value": 23.456},
    "baseline": {"what": "direct", "value": 21.0},
    "ratio": None,
    "rates": [
        {
            "rate": rate,
            "measured": {"p50_ms": 23.0 + rate, "p95_ms": 30.0 + rate, "p99_ms": 40.0 + rate},
            "baseline": {"p50_ms": 21.0, "p95_ms": 22.0, "p99_ms": float("nan")},
        }
        for rate in (10, 25, 50)
    ],
    "config": {"rates_per_s": [10, 25, 50], "seconds_per_rate": 10.0},
    "machine": MACHINE,
}


def test_table_is_exactly_the_expected_markdown() -> None:
    assert report.table([ONDEMAND, ROUTING, SCALING]) == (
        "| benchmark | measured | baseline | ratio | unit | goal | key config |\n"
        "| --- | ---: | ---: | ---: | --- | --- | --- |\n"
        "| ondemand | 23.5 | 21.0 | n/a | ms p50 |  | rates_per_s=10/25/50, seconds_per_rate=10 |\n"
        "| routing | 842 | 33,327 | 0.025 | events/s |  | events=20000, invalid_share=0.03 |\n"
        "| routing_scaling | 650 | 700 | 0.93 | events/s |  | events=10000, workers=1/2/4 |\n"
    )


def test_missing_figures_read_n_a() -> None:
    result = {**ROUTING, "baseline": {"what": "x", "value": None}, "config": {}}
    assert report.table([result]).splitlines()[-1] == (
        "| routing | 842 | n/a | 0.025 | events/s |  |  |"
    )
    assert report.number(float("nan")) == "n/a"
    assert report.ratio(None) == "n/a"
    assert report.ratio(0.00896) == "0.009"
    assert report.ratio(56.512) == "56.51"


def test_render_writes_the_readme_and_png_plots(tmp_path: Path) -> None:
    for result in (ROUTING, SCALING, ONDEMAND):
        (tmp_path / f"{result['benchmark']}.json").write_bytes(orjson.dumps(result))
    (tmp_path / "not-a-result.json").write_bytes(b'{"hello": 1}')

    readme = report.render(tmp_path)

    assert readme == tmp_path / "README.md"
    text = readme.read_text()
    assert report.table([ONDEMAND, ROUTING, SCALING]) in text
    for name in ("comparison.png", "scaling.png", "latency.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n"), name
        assert len(data) > 1000, name
        assert f"]({name})" in text


def test_render_without_results_writes_an_empty_table(tmp_path: Path) -> None:
    readme = report.render(tmp_path)
    assert report.table([]) in readme.read_text()
    assert not list(tmp_path.glob("*.png"))


def test_results_of_retired_benchmarks_are_not_loaded(tmp_path: Path) -> None:
    for name in ("routing", *sorted(report.RETIRED)):
        (tmp_path / f"{name}.json").write_bytes(orjson.dumps({**ROUTING, "benchmark": name}))
    assert [r["benchmark"] for r in report.load(tmp_path)] == ["routing"]


def test_only_the_known_comparisons_are_described_under_the_table() -> None:
    old = {**ROUTING, "faust_worker": {"what": "faust worker", "value": 2400.0, "ratio": 0.35}}
    text = report.markdown([old], [])
    assert "faust" not in text.lower()


def test_a_goal_shows_its_target_and_whether_it_is_met() -> None:
    met = {**ROUTING, "goal": {"what": "worker >= 0.8 of the loop", "value": 0.8, "met": True}}
    missed = {**SCALING, "goal": {"value": "1/2/3", "met": False}}
    latency = {**ONDEMAND, "goal": {"value": 250.0, "met": False}}
    rows = report.table([met, missed, latency]).splitlines()
    assert rows[2].split(" | ")[5] == "0.8: met"
    assert rows[3].split(" | ")[5] == "1/2/3: not met"
    assert rows[4].split(" | ")[5] == "250: not met"
    text = report.markdown([met], [])
    assert "Goal: worker >= 0.8 of the loop: 0.8: met." in text


def test_the_passthrough_ceiling_is_described_under_the_table() -> None:
    with_ceiling = {
        **ROUTING,
        "passthrough_ceiling": {"what": "bare passthrough", "value": 45000.0, "ratio": 0.0187},
    }
    text = report.markdown([with_ceiling], [])
    assert "Passthrough ceiling = bare passthrough: 45,000 events/s, ratio 0.019." in text


def test_the_command_counts_checked_are_described_under_the_table() -> None:
    checked = {
        **ROUTING,
        "commands": {"expected": 15074, "worker_matches": True, "loop_matches": False},
    }
    text = report.markdown([checked], [])
    assert (
        "Commands: 15,074 expected; the measured side's match: True, the baseline's: False." in text
    )
