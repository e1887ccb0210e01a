"""Codec throughput: fastavro (single-object encoding) vs orjson on the same records.

For every record type, the same records (realistic ones from the simulator and the demo's
samples) go through the project's codec both ways: Avro (``encode``/``decode``: dataclass ->
Avro bytes -> dataclass, schema-checked) and JSON (``encode_json``/``decode_json``: the same
dataclass <-> dict conversion, orjson for the bytes, validated against the same schema). Records
per second for a full round trip (encode + decode), warm-up excluded, median of several
repetitions. Bytes fields (DeadLetter) have no JSON form, so that type is Avro only.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import machine, median
from streams.codec import codec_for
from streams.demo.samples import sample_records
from streams.simulator.generator import Scenario, generate

REPETITIONS = int(os.environ.get("BENCH_REPETITIONS", "5"))
RECORDS = int(os.environ.get("BENCH_CODEC_RECORDS", "2000"))


def _records() -> dict[str, list[Any]]:
    data = generate(Scenario(seed=9, customers=500, events=RECORDS))
    by_type: dict[str, list[Any]] = {}
    for sim in data.events:
        if sim.invalid is None:
            by_type.setdefault(type(sim.record).__name__, []).append(sim.record)
    by_type["Preference"] = data.preferences
    by_type["TemplateVersion"] = data.templates
    by_type["CommRule"] = data.rules
    for sample in sample_records():
        name = type(sample).__name__
        if name not in by_type:
            by_type[name] = [dataclasses.replace(sample) for _ in range(RECORDS // 4)]
    return by_type


def _rate(records: list[Any], roundtrip: Callable[[Any], Any]) -> float:
    for r in records[: max(1, len(records) // 10)]:  # warm-up
        roundtrip(r)
    rates = []
    for _ in range(REPETITIONS):
        started = time.perf_counter()
        for r in records:
            roundtrip(r)
        rates.append(len(records) / (time.perf_counter() - started))
    return median(rates)


def _avro_round_trip(codec: Any) -> Callable[[Any], Any]:
    def round_trip(record: Any) -> Any:
        return codec.decode(codec.encode(record))

    return round_trip


def _json_round_trip(codec: Any) -> Callable[[Any], Any]:
    def round_trip(record: Any) -> Any:
        return codec.decode_json(codec.encode_json(record))

    return round_trip


def run() -> dict[str, Any]:
    per_type: dict[str, dict[str, float | None]] = {}
    avro_total = json_total = 0.0
    counted = 0
    for name, records in sorted(_records().items()):
        codec = codec_for(type(records[0]))
        avro = _rate(records, _avro_round_trip(codec))
        try:
            codec.decode_json(codec.encode_json(records[0]))
        except (TypeError, ValueError):
            per_type[name] = {"avro": avro, "json": None, "ratio": None, "records": len(records)}
            continue
        js = _rate(records, _json_round_trip(codec))
        per_type[name] = {"avro": avro, "json": js, "ratio": avro / js, "records": len(records)}
        avro_total += avro
        json_total += js
        counted += 1
    m, b = avro_total / counted, json_total / counted
    return {
        "benchmark": "codec",
        "unit": "records/s",
        "measured": {
            "what": "fastavro single-object round trip, mean over record types",
            "value": m,
        },
        "baseline": {
            "what": "orjson round trip of the same records, mean over the same types",
            "value": b,
        },
        "ratio": m / b,
        "schemas": per_type,
        "config": {
            "records_per_type": RECORDS,
            "repetitions": REPETITIONS,
            "round_trip": "encode+decode",
        },
        "machine": machine(),
    }
