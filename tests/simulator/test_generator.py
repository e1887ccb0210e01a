from __future__ import annotations

import random
from collections import Counter

import pytest

from streams.codec import DecodeError, codec_for
from streams.domain.catalogue import validate_event
from streams.domain.document_requests import AcceptedRequest, RequestRejection, decide_request
from streams.domain.records import DocumentRequest, TemplateVersion
from streams.simulator.generator import (
    LANGUAGES,
    MISSING_TEMPLATE,
    RETIRED_ONLY_TEMPLATE,
    Scenario,
    generate,
)
from streams.simulator.publish import event_bytes, request_bytes

pytestmark = pytest.mark.unit


def test_same_seed_same_dataset_other_seed_other_dataset() -> None:
    a = generate(Scenario(seed=1, customers=50, events=300))
    b = generate(Scenario(seed=1, customers=50, events=300))
    c = generate(Scenario(seed=2, customers=50, events=300))
    assert a == b
    assert a.events != c.events


def test_invalid_share_and_kinds_are_respected() -> None:
    data = generate(Scenario(seed=3, customers=100, events=4000, invalid_share=0.1))
    invalid = data.invalid_events
    assert 0.07 * 4000 < len(invalid) < 0.13 * 4000
    assert set(Counter(e.invalid for e in invalid)) == {
        "garbage",
        "truncated",
        "unknown_event_type",
        "missing_field",
    }


def test_valid_events_pass_validation_and_semantic_invalid_ones_do_not() -> None:
    data = generate(Scenario(seed=4, customers=100, events=2000, invalid_share=0.05))
    for sim in data.events:
        rejection = validate_event(sim.record)
        if sim.invalid in (None, "garbage", "truncated"):
            assert rejection is None, (sim.invalid, rejection)
        else:
            assert rejection is not None


def test_reference_data_exercises_every_alignment_case() -> None:
    data = generate(Scenario(seed=5, customers=10, events=10))
    template_ids = {t.template_id for t in data.templates}
    assert MISSING_TEMPLATE not in template_ids
    assert any(r.template_id == MISSING_TEMPLATE for r in data.rules)
    assert {t.status for t in data.templates if t.template_id == RETIRED_ONLY_TEMPLATE} == {
        "RETIRED"
    }
    assert any(not r.enabled for r in data.rules)
    assert any(r.regulatory for r in data.rules)
    languages = {p.language for p in generate(Scenario(customers=400, events=1)).preferences}
    assert languages == {code for code, _ in LANGUAGES}


def test_byte_level_invalid_records_do_not_decode_and_json_ones_do() -> None:
    data = generate(Scenario(seed=6, customers=50, events=3000, invalid_share=0.1, json_share=0.2))
    rng = random.Random(0)
    seen_json = 0
    for sim in data.events:
        value, headers = event_bytes(sim, rng)
        codec = codec_for(type(sim.record))
        if sim.invalid in ("garbage", "truncated"):
            with pytest.raises(DecodeError):
                codec.decode(value, headers)
        else:
            assert codec.decode(value, headers) == sim.record
            seen_json += headers is not None
    assert seen_json > 100


def test_document_requests_are_seeded_and_change_nothing_else_of_the_scenario() -> None:
    plain = generate(Scenario(seed=8, customers=60, events=400))
    with_requests = generate(Scenario(seed=8, customers=60, events=400, document_requests=300))
    assert plain.document_requests == []
    assert with_requests.events == plain.events
    assert with_requests.preferences == plain.preferences
    assert with_requests == generate(
        Scenario(seed=8, customers=60, events=400, document_requests=300)
    )
    other = generate(Scenario(seed=9, customers=60, events=400, document_requests=300))
    assert other.document_requests != with_requests.document_requests


def test_valid_requests_are_accepted_and_invalid_ones_rejected_or_undecodable() -> None:
    scenario = Scenario(
        seed=11, customers=80, events=1, document_requests=2_000, invalid_share=0.1, json_share=0.2
    )
    data = generate(scenario)
    templates: dict[str, list[TemplateVersion]] = {}
    for t in data.templates:
        templates.setdefault(t.template_id, []).append(t)
    rng = random.Random(0)
    kinds: Counter[str] = Counter()
    for sim in data.document_requests:
        value, raw_headers = request_bytes(sim, rng)
        headers = [(k, v if isinstance(v, bytes) else None) for k, v in raw_headers or ()]
        codec = codec_for(DocumentRequest)
        if sim.invalid in ("garbage", "truncated"):
            with pytest.raises(DecodeError):
                codec.decode(value, headers)
            kinds[sim.invalid] += 1
            continue
        assert codec.decode(value, headers) == sim.record
        decision = decide_request(sim.record, source_topic="t", templates_by_id=templates)
        if sim.invalid is None:
            assert isinstance(decision, AcceptedRequest), decision
            kinds["retry" if sim.retry else "valid"] += 1
            kinds["json"] += bool(headers)
            kinds[f"language={decision.command.language}"] += 1
        else:
            assert isinstance(decision, RequestRejection)
            kinds[sim.invalid] += 1
    assert set(kinds) >= {
        "valid",
        "retry",
        "json",
        "garbage",
        "truncated",
        "unknown_document_type",
        "missing_field",
        "invalid_delivery",
        "language=en",
        "language=fr",
        "language=es",
    }
    assert 0.07 * 2000 < len(data.invalid_requests) < 0.13 * 2000
    assert len({r.record.request_id for r in data.document_requests if r.retry}) > 30
