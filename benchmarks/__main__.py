"""``python -m benchmarks [NAME ...]``: run the benchmarks, write ``build/bench/<name>.json``."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from benchmarks import ondemand, sink

BENCHMARKS = {"sink": sink.run, "ondemand": ondemand.run}


def main(argv: list[str]) -> int:
    chosen = argv or list(BENCHMARKS)
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {sorted(BENCHMARKS)}", file=sys.stderr)
        return 2
    out = Path("build/bench")
    out.mkdir(parents=True, exist_ok=True)
    for name in chosen:
        result = BENCHMARKS[name]()
        path = out / f"{name}.json"
        path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        print(
            f"{name}: {result['measured']['value']:.0f} {result['unit']} vs baseline "
            f"{result['baseline']['value']:.0f} (ratio {result['ratio']:.2f}) -> {path}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
