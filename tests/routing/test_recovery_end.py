"""How table recovery may end (``faust_compat.recovery_reads_to_the_last_record``), on plain
fakes: the position recovery compares for a changelog partition whose end was read is never past
what recovery applied, so faust's "fetched to the end" check cannot end it with records still
queued; a partition it knows nothing about keeps the consumer's own position."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from streams.routing.faust_compat import recovery_reads_to_the_last_record

pytestmark = pytest.mark.unit

CHANGELOG = TP("app-preferences-changelog", 3)
OTHER = TP("app-suppression-changelog", 3)


class _Consumer:
    async def highwaters(self, *partitions: Any) -> dict[Any, int]:
        return dict.fromkeys(partitions, 0)  # empty changelogs: no tail to read

    async def position(self, tp: Any) -> int | None:
        return 100  # fetched to the end, records still queued


def _app(applied: dict[Any, int]) -> Any:
    recovery = SimpleNamespace(active_offsets=applied)
    return SimpleNamespace(consumer=_Consumer(), tables=SimpleNamespace(recovery=recovery))


async def test_the_position_recovery_compares_is_what_it_applied() -> None:
    app = _app({CHANGELOG: 5})
    await recovery_reads_to_the_last_record(app, {})
    assert await app.consumer.highwaters(CHANGELOG) == {CHANGELOG: 0}
    assert await app.consumer.position(CHANGELOG) == 5
    assert await app.consumer.position(OTHER) == 100  # not read by the tail: faust's own


async def test_installed_once() -> None:
    app = _app({})
    await recovery_reads_to_the_last_record(app, {})
    patched = app.consumer.position
    await recovery_reads_to_the_last_record(app, {})
    assert app.consumer.position is patched
    await app.consumer.highwaters(CHANGELOG)
    assert await app.consumer.position(CHANGELOG) == 100  # nothing applied yet: no bound known
