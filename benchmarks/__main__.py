"""``python -m benchmarks [NAME ...]``: run the benchmarks, write ``build/bench/<name>.json``,
then render ``build/bench/README.md`` and its plots from every result there."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from benchmarks import (
    audit_verify,
    codec,
    decision,
    engine_passthrough,
    ondemand,
    recovery,
    report,
    routing,
    sink,
)

Result = dict[str, Any]

BENCHMARKS: dict[str, Callable[[], Result | list[Result]]] = {
    "codec": codec.run,
    "decision": decision.run,  # no broker: the decision per event on one core
    "sink": sink.run,
    "ondemand": ondemand.run,
    # the routing worker: throughput (vs the transactional loop, and the passthrough ceiling),
    # backlog, latency (and that worker's throughput), scaling
    "routing": routing.run_all,
    "routing_throughput": routing.run,
    "routing_backlog": routing.run_backlog,
    "routing_latency": routing.run_latency,
    "routing_scaling": routing.run_scaling,
    # restore of 1,000,000 preferences per store in BENCH_RECOVERY_STORES: minutes, not in DEFAULT
    "recovery": recovery.run,
    "audit": audit_verify.run_all,  # verify full and incremental, and the writer's signing
    "audit_signing": audit_verify.run_signing,  # no broker
    # the engine (streams/engine) copying records vs the plain transactional loop (issue 14)
    "engine_passthrough": engine_passthrough.run,
}
DEFAULT = ["codec", "decision", "sink", "ondemand", "routing", "audit"]


def _figure(value: Any) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def main(argv: list[str]) -> int:
    chosen = argv or DEFAULT
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {sorted(BENCHMARKS)}", file=sys.stderr)
        return 2
    out = Path("build/bench")
    out.mkdir(parents=True, exist_ok=True)
    for name in chosen:
        produced = BENCHMARKS[name]()
        for result in produced if isinstance(produced, list) else [produced]:
            path = out / f"{result['benchmark']}.json"
            path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
            ratio = result.get("ratio")
            print(
                f"{result['benchmark']}: {_figure(result['measured']['value'])} {result['unit']} "
                f"vs baseline {_figure(result['baseline']['value'])} "
                f"(ratio {'n/a' if ratio is None else f'{ratio:.2f}'}) -> {path}"
            )
    print(f"report: {report.render(out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
