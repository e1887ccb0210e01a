"""The sync's mapping of Design versions onto template records (pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from streams.domain.records import TemplateVersion
from streams.emulator.design import communication_id, content_of
from streams.simulator.generator import template_catalogue
from streams.templatesync.mapping import (
    DesignVersion,
    changes,
    parse_time_ms,
    template_key,
    template_records,
)
from tests.exstream.templates import synced

pytestmark = pytest.mark.unit

T = next(t for t in template_catalogue() if t.status == "APPROVED" and t.language == "en")


def version(n: int, state: str, **over: object) -> DesignVersion:
    values: dict[str, object] = {
        "communication_id": "c-1",
        "version": n,
        "state": state,
        "last_modified_ms": 1000 + n,
        "content": content_of(replace(T, version=n)),
        "driver_data_source": "Driver",
    }
    values.update(over)
    return DesignVersion(**values)  # type: ignore[arg-type]


def test_the_catalogue_round_trips_through_the_design_api() -> None:
    """Seeded into the emulator's Design world and read back, the catalogue is unchanged, plus
    the Exstream communication and driver data source of each version."""
    catalogue = template_catalogue()
    records = synced(catalogue)
    assert len(records) == len(catalogue)
    by_key = {template_key(r): r for r in records}
    for t in catalogue:
        r = by_key[template_key(t)]
        assert r.exstream_communication_id == communication_id(t.template_id, t.language)
        assert r.driver_data_source is not None
        assert replace(r, exstream_communication_id=None, driver_data_source=None) == t


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        (["APPROVED"], ["APPROVED"]),
        (["APPROVED", "APPROVED"], ["RETIRED", "APPROVED"]),
        (["APPROVED", "APPROVED", "DRAFT"], ["RETIRED", "APPROVED", "DRAFT"]),
        (["APPROVED", "REVIEW"], ["APPROVED", "DRAFT"]),
        (["APPROVED", "REJECTED"], ["APPROVED", "RETIRED"]),
        (["REJECTED"], ["RETIRED"]),
        (["DRAFT", "APPROVED"], ["DRAFT", "APPROVED"]),
        (["APPROVED", "APPROVED", "REJECTED"], ["RETIRED", "APPROVED", "RETIRED"]),
    ],
)
def test_workflow_states_map_onto_usability(states: list[str], expected: list[str]) -> None:
    records, skipped = template_records(version(i + 1, s) for i, s in enumerate(states))
    assert skipped == []
    assert [r.status for r in records] == expected
    assert all(r.exstream_communication_id == "c-1" for r in records)


def test_unreadable_content_is_skipped_with_the_reason() -> None:
    bad = {**content_of(T), "requiredFields": "amount"}
    records, skipped = template_records(
        [
            version(1, "APPROVED", content=bad),
            version(2, "APPROVED", content=[]),
            version(3, "DRAFT"),
        ]
    )
    assert [r.version for r in records] == [3]
    assert [(s.version, s.reason) for s in skipped] == [
        (1, "requiredFields must be a list of strings"),
        (2, "the content is not an object"),
    ]


def test_changes_publish_only_differences_and_retire_what_disappeared() -> None:
    v1, v2 = template_records([version(1, "APPROVED"), version(2, "DRAFT")])[0]
    published = {template_key(v1): v1, template_key(v2): v2}
    assert changes(published, [v1, v2]) == []
    approved = replace(v2, status="APPROVED")
    assert changes(published, [v1, approved]) == [approved]
    gone = changes(published, [v1])
    assert gone == [replace(v2, status="RETIRED")]
    assert changes({template_key(v2): gone[0]}, []) == []  # already retired: nothing again


def test_iso_times() -> None:
    assert parse_time_ms("1970-01-01T00:00:01.234Z") == 1234
    assert parse_time_ms(None) == 0


def test_templates_of_other_kinds_stay_as_they_were() -> None:
    assert isinstance(synced([T])[0], TemplateVersion)
