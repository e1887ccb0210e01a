"""Global views of compacted reference topics (rules, templates): every worker holds all of it.

A :class:`ReferenceView` reads every partition of a compacted topic from the beginning with its own
consumer (no consumer group, nothing committed), keeps the latest decoded value per key, deletes a
key on a tombstone, and stays live afterwards. ``wait_ready()`` returns once the view has caught up
with the end offsets observed when it started, so routing never runs against half-loaded rules.

Why a view per worker rather than a table with a changelog: reading the compacted source topic
directly gives a GlobalKTable's semantics (every worker holds all of it) without copying the
topic into a second changelog topic.

For the join's order (:mod:`streams.routing.alignment`) the view also tells, per partition, how
far it has applied the topic, the end offset its consumer last observed and when
(:meth:`ReferenceView.partition_states`), and calls ``on_progress`` after every poll, so that an
event waiting for a rule or template published before it wakes up (``fetch_wait_ms`` bounds how
stale that observation can be while the topic is quiet). An event that arrives while the view is
caught up as far as it knows need not wait for the next fetch to come back empty:
:meth:`ReferenceView.request_observation` asks the broker for the ends at once (one ListOffsets
round trip, read_committed: the last stable offsets), one request in flight at a time, from a
second client: on the view's own connection the question would queue behind the long-poll fetch
(a broker answers one request of a connection after the other), waiting out ``fetch_wait_ms``.

Undecodable records are not applied; they are counted and handed to ``on_invalid`` (the worker
dead-letters them), and the view goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from streams.aiokafka_compat import partitions_of
from streams.errors import AirExstreamError
from streams.routing.alignment import ReferencePartition

log = logging.getLogger(__name__)

V = TypeVar("V")

Decoder = Callable[[bytes, list[tuple[str, bytes]]], V]
InvalidHandler = Callable[[str, int, int, bytes | None, bytes | None, Exception], None]


class ReferenceView(Generic[V]):
    """The latest value per key of one compacted topic, kept current in the background."""

    def __init__(
        self,
        *,
        topic: str,
        decode: Decoder[V],
        bootstrap_servers: str | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
        on_invalid: InvalidHandler | None = None,
        on_change: Callable[[str, V | None, V | None], None] | None = None,
        partitions: int | None = None,
        on_progress: Callable[[], None] | None = None,
        fetch_wait_ms: int = 100,
    ) -> None:
        self.topic = topic
        # client_kwargs: ``KafkaSettings.aiokafka_kwargs()`` as it is (bootstrap included)
        self._bootstrap = bootstrap_servers
        self._decode = decode
        self._client_kwargs = dict(client_kwargs or {})
        self._on_invalid = on_invalid
        self._on_change = on_change
        self._partition_count = partitions
        self._values: dict[str, V] = {}
        self._ready = asyncio.Event()
        self._failure: BaseException | None = None
        self._on_progress = on_progress
        self._fetch_wait_ms = fetch_wait_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._positions: dict[int, int] = {}
        self._last_timestamps: dict[int, int] = {}
        self._observed: tuple[int, dict[int, int]] | None = None
        """The last ends asked for (:meth:`request_observation`): when asked, the end per
        partition."""
        self._observation_wanted = False
        self._observing: asyncio.Task[None] | None = None
        self._prober: AIOKafkaConsumer | None = None
        """The client that asks for the ends (its own connection)."""
        self.version = 0
        """Increases on every applied change; lets callers cache derived indexes cheaply."""
        self.invalid = 0

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: str) -> V | None:
        return self._values.get(key)

    def values(self) -> list[V]:
        return list(self._values.values())

    async def wait_ready(self, timeout_s: float | None = None) -> None:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError as exc:
            raise ReferenceViewNotReady(self.topic, timeout_s) from exc
        if self._failure is not None:
            raise self._failure

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def partition_states(self) -> list[ReferencePartition]:
        """Per partition: applied position, last observed end offset and when, last applied
        record's timestamp (see :func:`streams.routing.alignment.reference_covers`). Empty when
        the view's consumer is not running (a view that failed does not hold events up: they
        are decided with what it holds, as before the alignment)."""
        consumer = self._consumer
        if consumer is None:
            return []
        states = []
        observed_at, observed_ends = self._observed or (None, {})
        for tp in consumer.assignment():
            end, at = consumer.last_stable_offset(tp), consumer.last_poll_timestamp(tp)
            newer = observed_at is not None and (at is None or end is None or observed_at > at)
            if newer and tp.partition in observed_ends:  # the asked-for ends are the newer
                end, at = observed_ends[tp.partition], observed_at
            states.append(
                ReferencePartition(
                    position=self._positions.get(tp.partition),
                    end_offset=end,
                    observed_at_ms=at,
                    last_timestamp_ms=self._last_timestamps.get(tp.partition),
                )
            )
        return states

    def request_observation(self) -> None:
        """Ask the broker for every partition's end now (in the background; ``on_progress``
        is called once the answer is in :meth:`partition_states`). A request made while one is
        in flight is answered by another one after it: the one in flight may have been sent
        before the caller's event arrived."""
        if self._consumer is None or self._prober is None:
            return
        self._observation_wanted = True
        if self._observing is None or self._observing.done():
            self._observing = asyncio.get_running_loop().create_task(self._observe())

    async def _observe(self) -> None:
        while self._observation_wanted and self._consumer is not None:
            self._observation_wanted = False
            consumer, prober = self._consumer, self._prober
            if prober is None:
                return
            asked_at = int(time.time() * 1000)
            try:
                ends = await prober.end_offsets(list(consumer.assignment()))
            except KafkaError as exc:  # the fetches go on observing the ends: only slower
                log.debug("reference view %s: asking for the ends: %s", self.topic, exc)
                return
            self._observed = (asked_at, {tp.partition: end for tp, end in ends.items()})
            if self._on_progress is not None:
                self._on_progress()

    def apply(self, key: str, value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        """Apply one record (a tombstone when ``value`` is None). Raises on undecodable values."""
        old = self._values.get(key)
        if value is None:
            if key in self._values:
                del self._values[key]
                self.version += 1
                if self._on_change is not None:
                    self._on_change(key, old, None)
            return
        new = self._decode(value, headers)
        self._values[key] = new
        self.version += 1
        if self._on_change is not None:
            self._on_change(key, old, new)

    async def run(self) -> None:
        """Consume the topic until cancelled. A failure is logged, re-raised, and also raised by
        ``wait_ready`` so that the agents waiting on the view stop instead of hanging."""
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("reference view %s failed", self.topic)
            self._failure = exc
            self._ready.set()
            raise

    async def _run(self) -> None:
        consumer = AIOKafkaConsumer(
            enable_auto_commit=False,
            group_id=None,
            isolation_level="read_committed",
            **({"bootstrap_servers": self._bootstrap} if self._bootstrap else {}),
            fetch_max_wait_ms=self._fetch_wait_ms,
            **self._client_kwargs,
        )
        prober = AIOKafkaConsumer(
            enable_auto_commit=False,
            group_id=None,
            isolation_level="read_committed",
            **({"bootstrap_servers": self._bootstrap} if self._bootstrap else {}),
            **self._client_kwargs,
        )
        await consumer.start()
        try:
            await prober.start()
        except BaseException:
            await consumer.stop()
            raise
        self._consumer, self._prober = consumer, prober
        try:
            partitions = await self._partitions(consumer)
            tps = [TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            pending = {tp for tp in tps if end[tp] > 0}
            if not pending:
                self._ready.set()
            while True:
                batches = await consumer.getmany(timeout_ms=self._fetch_wait_ms, max_records=5000)
                for messages in batches.values():
                    for msg in messages:
                        await self._apply_waiting(msg)
                        self._last_timestamps[msg.partition] = msg.timestamp
                for tp in tps:  # known after the seek: returns without waiting
                    self._positions[tp.partition] = await consumer.position(tp)
                if self._on_progress is not None:
                    self._on_progress()
                if pending:
                    pending = {tp for tp in pending if await consumer.position(tp) < end[tp]}
                    if not pending:
                        log.info("reference view %s ready: %d keys", self.topic, len(self))
                        self._ready.set()
        finally:
            self._consumer = self._prober = None
            if self._observing is not None:
                self._observing.cancel()
            await prober.stop()
            await consumer.stop()

    async def _apply_waiting(self, msg: Any) -> None:
        """Apply ``msg``; while a retriable error (a schema registry that does not answer)
        prevents it, wait and try again: skipping it would drop a valid rule or template."""
        delay = 0.2
        while True:
            try:
                self._apply_message(msg)
                return
            except AirExstreamError as exc:
                if not exc.retriable:
                    raise
                log.warning("reference view %s: %s; trying again in %.1f s", self.topic, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _apply_message(self, msg: Any) -> None:
        """Apply ``msg``; a record that cannot be applied is counted and skipped. A retriable
        error is raised (the record is fine, something it needs is not available)."""
        key = msg.key.decode("utf-8", "replace") if msg.key is not None else ""
        headers = [(k, v) for k, v in (msg.headers or ())]
        try:
            self.apply(key, msg.value, headers)
        except AirExstreamError as exc:
            if exc.retriable:
                raise
            self.invalid += 1
            log.warning(
                "reference view %s: record at %d/%d not applied: %s",
                self.topic,
                msg.partition,
                msg.offset,
                exc,
            )
            if self._on_invalid is not None:
                self._on_invalid(self.topic, msg.partition, msg.offset, msg.key, msg.value, exc)

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[int]:
        if self._partition_count is not None:
            return list(range(self._partition_count))
        for _ in range(100):  # bounded: about 10 s for the topic's metadata to appear
            parts = await partitions_of(consumer, self.topic)
            if parts:
                return sorted(parts)
            await asyncio.sleep(0.1)
        raise ReferenceViewNotReady(self.topic, 10.0)


class ReferenceViewNotReady(AirExstreamError):
    retriable = True

    def __init__(self, topic: str, timeout: float | None) -> None:
        super().__init__(
            f"reference topic {topic!r} could not be loaded within {timeout} s; "
            "check that the topic exists (air-exstream topology apply) and the broker is reachable"
        )
