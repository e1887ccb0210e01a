"""Every use of faust-streaming's internals by the routing worker, in one place.

The worker's exactly-once guarantee and its table recovery rest on behaviour faust-streaming
0.15.3 gets wrong (see :class:`CommitGuard`, :func:`highwaters_from_broker`,
:func:`checkpoint`); closing those gaps needs private attributes and replaced methods of
faust's consumer, transaction manager and producer. They are all here and nowhere else
(``tests/test_boundaries.py`` checks it), and this module refuses to load with any other
faust-streaming release than the one each of them was read against and tested with: a new
release must be read again before the worker may run on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from contextlib import suppress
from importlib.metadata import version
from typing import Any, Protocol

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.streams import current_event
from faust.types import TP

from streams.errors import AirExstreamError
from streams.routing.changelog_tail import TailUnread, recovery_ends
from streams.routing.commit_cadence import CommitCadence
from streams.routing.metrics import PartitionPosition, RoutingMetrics
from streams.routing.watchdog import Deadline

log = logging.getLogger(__name__)

SUPPORTED_FAUST = "0.15.3"
"""The faust-streaming release every replaced method and private attribute here was read in."""


class UnsupportedFaust(AirExstreamError):
    """The installed faust-streaming is not the release this module was written against."""

    code = "UNSUPPORTED_FAUST"


def check_faust_version(installed: str) -> None:
    """Raise :class:`UnsupportedFaust` unless ``installed`` is :data:`SUPPORTED_FAUST`."""
    if installed != SUPPORTED_FAUST:
        raise UnsupportedFaust(
            f"faust-streaming {installed} is installed, but the routing worker patches the "
            f"internals of {SUPPORTED_FAUST} (streams/routing/faust_compat.py): install "
            f"faust-streaming=={SUPPORTED_FAUST}, or read each patch there again against "
            f"{installed} before changing SUPPORTED_FAUST"
        )


check_faust_version(version("faust-streaming"))


class SkipCounters(Protocol):
    """The worker's counters of records :meth:`CommitGuard.process` skips."""

    redeliveries_skipped: int
    revoked_skipped: int


def table_entries(table: Any) -> int:
    """Entries in ``table``'s active partitions here (rocksdb: its estimate, no full scan)."""
    store: Any = table.data
    dbs = getattr(store, "_dbs", None)
    if dbs is not None:
        total = 0
        for db in list(dbs.values()):
            with suppress(Exception):  # a db being closed by a rebalance: counted next time
                total += int(db.property_int_value("rocksdb.estimate-num-keys") or 0)
        return total
    return len(store)


def end_offset(app: faust.App, tp: TP) -> int | None:
    """The end (last stable offset under exactly_once) of ``tp`` as the consumer last saw it in
    a fetch response; None before the first fetch of ``tp`` or when it is not assigned."""
    try:
        end = app.consumer.highwater(tp)
    except (AttributeError, KeyError, AssertionError):  # not assigned, consumer not started
        return None
    return end if isinstance(end, int) and end >= 0 else None


def committed_offset(app: faust.App, tp: TP) -> int | None:
    """The group's committed offset of ``tp`` as faust knows it (set at every assignment and
    commit)."""
    consumer: Any = app.consumer
    offset = consumer._committed_offset.get(tp)
    return offset if isinstance(offset, int) else None


async def checkpoint(app: faust.App, table: Any, kafka_kwargs: dict[str, Any]) -> None:
    """Record in each active partition of a rocksdb ``table`` how far its changelog is already
    in the local files, so that a restart reads only the changelog written after that point.

    The changelog's current end is such a point: every record below it was either applied to
    the store before it was sent (:meth:`CommitGuard.put` writes the store first) or read by
    this worker's recovery. Hence nothing is recorded while a rebalance or recovery is under
    way, and a rebalance during the offset request discards the answer. faust-streaming does
    not keep this offset under exactly_once: it holds it back until the *changelog* partition
    is committed, but commits are of *input* partitions, so it is never written.
    """
    if app.rebalancing or app.in_recovery:
        return
    generation = app.consumer_generation_id
    changelog = table.changelog_topic.get_topic_name()
    tps = [TopicPartition(tp.topic, tp.partition) for tp in app.assignor.assigned_actives()]
    tps = [tp for tp in tps if tp.topic == changelog]
    if not tps:
        return
    probe = AIOKafkaConsumer(enable_auto_commit=False, **kafka_kwargs)
    await probe.start()
    try:
        ends = await probe.end_offsets(tps)
    finally:
        await probe.stop()
    if app.rebalancing or app.in_recovery or app.consumer_generation_id != generation:
        return
    for tp, end in ends.items():
        if end > 0:
            table.data.set_persisted_offset(tp, end - 1)


async def highwaters_from_broker(app: faust.App, *args: Any, **kwargs: Any) -> None:
    """Make table recovery ask the broker where each changelog ends (first rebalance callback).

    Under exactly_once, faust-streaming 0.15.3 takes a changelog's end from the consumer's
    fetch state (``last_stable_offset``), which is unknown until that partition was fetched.
    Recovery then sees -1, "empty", and skips the partition: a worker that started fast enough
    ran with empty tables (seen with 50,000 preferences: none restored), or, with rocksdb,
    stopped on a ConsistencyError (its checkpoint above the "end"). A ListOffsets request
    with the consumer's read_committed isolation returns the same last stable offset, always.
    """
    consumer: Any = app.consumer
    thread: Any = consumer._thread
    if getattr(thread, "_highwaters_from_broker", False):
        return

    async def highwaters(partitions: Any) -> Any:
        return await thread._ensure_consumer().end_offsets(partitions)

    thread._highwaters = highwaters
    thread._highwaters_from_broker = True


async def recovery_reads_to_the_last_record(
    app: faust.App, kafka_kwargs: dict[str, Any], *args: Any, **kwargs: Any
) -> None:
    """Make table recovery end when each changelog partition's last committed record was applied
    (a rebalance callback: installs on the first, does nothing after).

    faust-streaming 0.15.3 takes a changelog's "highwater" as the offset below its end, under
    exactly-once usually a transaction marker that is never delivered, and so ends recovery by
    comparing the consumer's fetch position with it (``Recovery._slurp_changelogs``'
    ``detect_aborted_tx``, after two 5-s waits without a record, counted across recoveries).
    The position is at the end as soon as the records are fetched, before they are taken from
    the queue, and those records were then skipped: a whole partition of a table was missing
    after a restart (:mod:`streams.routing.changelog_tail`). Here the highwaters recovery asks
    for are one past each partition's last committed record, read from its tail, and the
    position recovery compares is, for those partitions, no further than what recovery has
    applied, so that comparison can no longer end it early: recovery ends when the last record
    is applied, as faust does without transactions. Where the tail cannot be read in time the
    partition keeps faust's own highwater and check (and its race), with a warning.

    A persisted offset (rocksdb checkpoint, :func:`checkpoint`) at or above the last record is
    kept as the highwater: the partition has nothing left to recover.
    """
    consumer: Any = app.consumer
    if getattr(consumer, "_reads_to_the_last_record", False):
        return
    highwaters = consumer.highwaters
    position = consumer.position
    exact: set[Any] = set()

    async def to_the_last_record(*partitions: TP) -> dict[Any, int]:
        ends = dict(await highwaters(*partitions))
        if not any(ends.values()):
            # empty changelogs: nothing to read (and an aiokafka consumer stopped before it ever
            # awaited anything raises CancelledError from its stop())
            exact.update(ends)
            return ends
        reader = AIOKafkaConsumer(
            **kafka_kwargs,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await reader.start()
        try:
            tails = await recovery_ends(reader, {tp: end or 0 for tp, end in ends.items()})
        except TailUnread as exc:
            log.warning("table recovery falls back to faust's own end check: %s", exc)
            exact.difference_update(ends)
            return ends
        finally:
            await reader.stop()
        exact.update(ends)
        persisted = _persisted_offsets(app, list(ends))
        return {
            tp: max(tail, persisted[tp] + 1) if tp in persisted else tail
            for tp, tail in tails.items()
        }

    tables: Any = app.tables

    async def no_further_than_applied(tp: TP) -> int | None:
        at: int | None = await position(tp)
        if at is None or tp not in exact:
            return at
        applied: int | None = tables.recovery.active_offsets.get(tp)
        return at if applied is None else min(at, applied)

    consumer.highwaters = to_the_last_record
    consumer.position = no_further_than_applied
    consumer._reads_to_the_last_record = True


def _persisted_offsets(app: faust.App, partitions: list[Any]) -> dict[Any, int]:
    """The persisted (checkpointed) offset of each changelog partition that has one."""
    by_topic = {t.changelog_topic.get_topic_name(): t for t in app.tables.values()}
    out: dict[Any, int] = {}
    for tp in partitions:
        table = by_topic.get(tp.topic)
        offset = table.persisted_offset(tp) if table is not None else None
        if offset is not None:
            out[tp] = offset
    return out


class CommitGuard:
    """Exactly-once processing on top of faust-streaming's transactions, made to really hold.

    Two gaps in faust-streaming 0.15.3 were found by the crash test (SIGKILL of the worker
    mid-stream produced hundreds of duplicate commands) and are closed here:

    1. Faust chooses a record's transactional producer from the *output* topic's partition,
       looked up in the consumer's metadata. For topics the worker does not consume (commands,
       alerts, audit, dead letters) that lookup fails and the record is sent through the
       non-transactional producer: it is never part of any transaction. Here every record sent
       while an input record is processed goes through the transactional producer of that
       *input* partition, the one whose transaction also commits the input offset (the rule
       Kafka Streams follows).
    2. Faust commits from a timer, independently of the agents, so a transaction could contain
       part of a record's outputs while its offset went into the next one. Here a lock is held
       while one record is processed and acked, and the commit takes the same lock, so every
       transaction holds whole records together with their offsets.

    Table updates go through :meth:`put` / :meth:`delete`, which write the table's store at once
    and keep the changelog record pending for the transaction of the input partition being
    processed (instead of Faust's buffered changelog writes, whose timing relative to the commit
    is not controlled). Right before each commit, under the same lock, the pending records are
    sent through their transactions: only the last value of a key within one transaction is
    written (a chain head updated per audit record, a customer's suppression state updated per
    event), which is what a table's changelog needs, as Kafka Streams' caching stores do. A
    revoked partition's pending records are dropped with its aborted transaction.
    """

    def __init__(
        self,
        app: faust.App,
        counters: SkipCounters,
        deadline: Deadline,
        metrics: RoutingMetrics | None = None,
        cadence: CommitCadence | None = None,
        inputs: Callable[[], Collection[str]] = frozenset,
    ) -> None:
        self._app = app
        self._counters = counters
        self._cadence = cadence
        """When the periodic commit is due (:mod:`streams.routing.commit_cadence`); None: at
        every tick of faust's commit timer."""
        self._inputs = inputs
        """The worker's input topics, whose processing positions :attr:`_cadence` weighs."""
        self._deadline = deadline
        self._metrics = metrics if metrics is not None else RoutingMetrics()
        """A commit that cannot finish ends the worker (see :mod:`streams.routing.watchdog`)."""
        self._processed: dict[tuple[int, str, int], int] = {}
        self._lock = asyncio.Lock()
        self._installed = False
        self._pending: dict[str, dict[tuple[str, bytes], tuple[int, bytes | None]]] = {}
        """transactional id -> (changelog topic, key) -> (partition, value or None)"""
        self._revoked_generation: int | None = None
        """The last consumer generation whose partitions were revoked (see :meth:`process`)."""

    def _transactional_id(self, topic: str, partition: int) -> str:
        """The transactional id faust gives an input partition (``{app}-{group}-{partition}``)."""
        group = self._app.assignor.group_for_topic(topic)
        return f"{self._app.conf.id}-{group}-{partition}"

    def _install(self) -> None:
        """Patch the running worker's consumer. Not done at build time: touching
        ``app.consumer`` before the Worker has started makes faust cache
        ``in_transaction=False`` and silently turns exactly-once off."""
        self._installed = True
        app = self._app
        consumer: Any = app.consumer
        force_commit = consumer.force_commit

        async def locked_commit(*args: Any, **kwargs: Any) -> Any:
            with self._metrics.commit_duration.time():
                async with self._deadline.guard("A commit of the routing worker"), self._lock:
                    await self._flush_pending()
                    return await force_commit(*args, **kwargs)

        consumer.force_commit = locked_commit
        if self._cadence is not None and self._cadence.adaptive:
            self._pace_commits(consumer, self._cadence)
        self._commit_before_revoke(consumer, force_commit)
        self._seek_before_resume(app, consumer)
        if app.in_transaction:
            self._route_sends_by_input_partition(app, consumer)
            self._stop_producers_given_away(consumer)

    def _pace_commits(self, consumer: Any, cadence: CommitCadence) -> None:
        """Let faust's commit timer (ticking every ``cadence.tick_s``) commit only when
        ``cadence`` says a commit is due: early once the worker has caught up with its inputs,
        at the latest every ``max_interval_s``. Only the argument-less periodic commit is
        paced; a commit of given topics, before a rebalance or at shutdown goes through."""
        commit = consumer.commit
        last = [time.monotonic()]

        async def paced_commit(*args: Any, **kwargs: Any) -> Any:
            now = time.monotonic()
            periodic = not args and not kwargs
            since_last_s = now - last[0]
            if periodic and not cadence.due(
                since_last_s=since_last_s, positions=self.processing_positions()
            ):
                return False
            last[0] = now
            return await commit(*args, **kwargs)

        consumer.commit = paced_commit

    def processing_positions(self) -> list[PartitionPosition]:
        """Where processing stands in each assigned input partition: the offset after the last
        record processed in this consumer generation (else the committed one), and the end the
        consumer last saw. Not faust's read offsets: faust reads thousands of records ahead
        into its stream buffers, so those show no lag while a backlog waits there."""
        app = self._app
        consumer: Any = app.consumer
        generation = app.consumer_generation_id
        inputs = self._inputs()
        out = []
        for tp in consumer.assignment():
            if tp.topic not in inputs:
                continue
            done = self._processed.get((generation, tp.topic, tp.partition))
            next_offset = done + 1 if done is not None else committed_offset(app, tp)
            out.append(PartitionPosition(tp.topic, tp.partition, end_offset(app, tp), next_offset))
        return out

    async def on_revoked(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # the first rebalance callback of a worker: running, not yet recovering tables
        if not self._installed:
            self._install()
        revoked = args[0] if args else ()
        for tp in revoked:
            # the partition's open transaction is aborted: its pending writes go with it
            self._pending.pop(self._transactional_id(tp.topic, tp.partition), None)

    def _commit_before_revoke(
        self, consumer: Any, force_commit: Callable[[], Awaitable[Any]]
    ) -> None:
        """Commit every processed record, with its outputs, before a rebalance revokes.

        faust-streaming 0.15.3 forgets, as a revocation starts, which offsets were acked since
        the last commit; after the new assignment it seeks every partition back to its committed
        offset, while the transactions of the partitions it keeps stay open. Those records were
        then processed again into the same open transaction and committed twice (seen when a
        second worker joined: 284 commands written twice). A record still being processed, or
        waiting for the lock, when the revocation started was processed for a partition whose
        transactional id the next owner had already fenced: the worker crashed on that send or
        on the next commit. Here a revocation first waits for the record being processed and
        commits every processed record (as Kafka Streams commits its tasks before giving them
        up); records fetched in that consumer generation and not yet processed are then skipped
        (:meth:`process`) and read again from the committed offset by the partition's next
        owner (this worker too, when it keeps the partition).
        """
        revoke = consumer.on_partitions_revoked

        async def commit_then_revoke(revoked: Any) -> Any:
            try:
                async with self._deadline.guard("A commit before a rebalance"), self._lock:
                    self._revoked_generation = self._app.consumer_generation_id
                    await self._flush_pending()
                    await force_commit()
            except Exception as exc:  # as faust does when a commit is fenced: end the worker
                log.exception("the commit before a rebalance failed")
                await self._app.crash(exc)
                raise
            return await revoke(revoked)

        consumer.on_partitions_revoked = commit_then_revoke

    @staticmethod
    def _stop_producers_given_away(consumer: Any) -> None:
        """Stop the transactional producer of every partition this worker no longer owns.

        faust-streaming 0.15.3 stops only the producers of revoked partitions that are not
        standbys, and a partition handed to another worker usually becomes a standby here: its
        producer stayed, fenced by the new owner, and when the partition came back it was
        reused and failed its first send (ProducerFenced, then "Can't send messages while not in
        transaction": the worker crashed, seen when a worker left). Here, before faust starts the
        producers of a new assignment, every other one is stopped; a partition that comes back
        gets a new producer, whose initialisation fences the previous owner's.
        """
        transactions = consumer.transactions
        on_rebalance = transactions.on_rebalance

        async def stop_then_rebalance(assigned: Any, revoked: Any, newly_assigned: Any) -> Any:
            keep = transactions._tps_to_transactional_ids(assigned)
            producer = transactions.producer
            given_away = [t for t in producer._transaction_producers if t not in keep]
            for transactional_id in given_away:
                await producer.stop_transaction(transactional_id)
            if given_away:
                log.info("stopped the transactional producers of %s", ", ".join(given_away))
            return await on_rebalance(assigned, revoked, newly_assigned)

        transactions.on_rebalance = stop_then_rebalance

    async def _flush_pending(self) -> None:
        """Send every pending changelog record through its input partition's transaction."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        producer = self._app.consumer.transactions.producer
        for transactional_id, entries in pending.items():
            for (topic, key), (partition, value) in entries.items():
                await producer.send(
                    topic, key, value, partition, None, None, transactional_id=transactional_id
                )

    @staticmethod
    def _seek_before_resume(app: faust.App, consumer: Any) -> None:
        """Make stream partitions fetchable only after they were sought to the committed offset.

        faust-streaming's recovery resumes the stream partitions and *then* seeks them to the
        committed offsets. Records the fetcher had buffered from before the seek are delivered
        in between, and the seek then rewinds under them: seen as records routed twice and as a
        partition whose committed offset never moved again. Here a resume is held back until
        the seek that always follows it has completed (changelog partitions, which table
        recovery itself reads, are resumed at once).
        """
        pending: set[Any] = set()
        resume = consumer.resume_partitions
        perform_seek = consumer.perform_seek

        def deferred_resume(tps: Any) -> None:
            changelogs = app.tables.changelog_topics
            # table recovery reads changelogs while stream partitions wait: those go at once
            now = {tp for tp in tps if tp.topic in changelogs}
            pending.update(tp for tp in tps if tp.topic not in changelogs)
            if now:
                resume(now)

        async def seek_then_resume() -> None:
            await perform_seek()
            await _uncommitted_to_the_beginning()
            if pending:
                ready = set(pending)
                pending.clear()
                resume(ready)

        async def _uncommitted_to_the_beginning() -> None:
            # faust seeks only partitions with a committed offset: one without keeps the fetch
            # position it had, and records fetched there and dropped by faust (fetched for a
            # partition not active yet, or in a generation a rebalance then ended) were never
            # read again: seen as the first 500 records of a partition skipped by a worker
            # restarted before anything of that partition was committed. The worker's reset
            # policy is "earliest": such partitions go back to their beginning.
            changelogs = app.tables.changelog_topics
            committed = consumer._committed_offset
            never = [
                TopicPartition(tp.topic, tp.partition)
                for tp in consumer.assignment()
                if tp.topic not in changelogs and not committed.get(tp)
            ]
            if never:
                await consumer._thread.seek_to_beginning(*never)

        consumer.resume_partitions = deferred_resume
        consumer.perform_seek = seek_then_resume

    def _route_sends_by_input_partition(self, app: faust.App, consumer: Any) -> None:
        transactions = consumer.transactions
        transactional_id_of = self._transactional_id
        fallback_send = transactions.send

        async def send(
            topic: str,
            key: bytes | None,
            value: bytes | None,
            partition: int | None,
            timestamp: float | None,
            headers: Any,
            *,
            transactional_id: str | None = None,
        ) -> Any:
            event = current_event()
            if event is None:
                return await fallback_send(topic, key, value, partition, timestamp, headers)
            source = event.message.tp
            return await transactions.producer.send(
                topic,
                key,
                value,
                partition,
                timestamp,
                headers,
                transactional_id=transactional_id_of(source.topic, source.partition),
            )

        transactions.send = send

    async def process(self, event: Any, handle: Callable[[Any], Awaitable[None]]) -> bool:
        """Run ``handle(event.message)`` and ack the event before any commit can run.

        Returns False (and does not call ``handle``) for a redelivery: an offset at or below one
        already processed in this consumer generation. faust-streaming's fetcher accepts an
        offset equal to the last one read (``offset >= read_offset``), and after its recovery
        seek a partition's last record can come round a second time (seen in the crash test:
        the tail record of each partition routed twice). Within one generation an offset
        processed once is either committed or in the open transaction, so skipping it loses
        nothing; a rebalance starts a new generation, where the committed offset rules again.

        Also returns False for a record fetched in a consumer generation whose partitions were
        since revoked (see :meth:`_commit_before_revoke`): it is marked acked without telling
        the consumer, so that neither this nor faust's stream registers its offset (which would
        let a later commit skip it); the partition's next owner reads it again.
        """
        if not self._installed:
            self._install()
        msg = event.message
        position = (self._app.consumer_generation_id, msg.topic, msg.partition)
        async with self._lock:
            revoked = self._revoked_generation
            fetched_in = getattr(msg, "generation_id", None)
            if revoked is not None and fetched_in is not None and fetched_in <= revoked:
                self._counters.revoked_skipped += 1
                msg.acked = True
                return False
            last = self._processed.get(position)
            if last is not None and last >= msg.offset:
                self._counters.redeliveries_skipped += 1
                event.ack()
                return False
            if last is None:
                # one line per input partition and generation: where processing (re)started
                consumer: Any = self._app.consumer
                log.info(
                    "routing: first record of %s/%d in generation %s at offset %d (committed: %s)",
                    msg.topic,
                    msg.partition,
                    position[0],
                    msg.offset,
                    consumer._committed_offset.get(msg.tp),
                )
            await self._register_gap(msg, last)
            await handle(msg)
            self._processed[position] = msg.offset
            self._metrics.record_in(msg.topic)
            event.ack()
            return True

    async def _register_gap(self, msg: Any, last: int | None) -> None:
        """Tell faust which offsets before ``msg`` will never arrive, so its commits move on.

        Transaction markers (and aborted records, under read_committed) occupy offsets that are
        never delivered. faust-streaming records such a gap only when the previous offset read
        was non-zero (``if gap > 1 and r_offset``), so a partition whose first record sits at
        offset 0 followed by two markers never committed past offset 1 (seen on the audit intake
        topic: the audit writer re-read it from the start after every restart).
        """
        consumer: Any = self._app.consumer
        start = last + 1 if last is not None else consumer._committed_offset.get(msg.tp)
        if start is not None and msg.offset > start:
            await consumer._add_gap(msg.tp, start, msg.offset - 1)

    async def put(self, table: Any, msg: Any, key: bytes, value: bytes | None) -> None:
        """Set (``None``: delete) ``key`` in ``table`` while ``msg`` is processed; its changelog
        record (in ``msg``'s partition) is committed with ``msg``'s offset."""
        if value is None:
            table.data.pop(key, None)
        else:
            table.data[key] = value
        if not self._app.in_transaction:
            await table.changelog_topic.send(key=key, value=value, partition=msg.partition)
            return
        entries = self._pending.setdefault(self._transactional_id(msg.topic, msg.partition), {})
        entries[(table.changelog_topic.get_topic_name(), key)] = (msg.partition, value)

    async def delete(self, table: Any, msg: Any, key: bytes) -> None:
        await self.put(table, msg, key, None)

    async def put_outside(self, table: Any, partition: int, key: bytes, value: bytes) -> None:
        """Set ``key`` from outside any input record (a timer): written at once, outside the
        transactions; a record still pending for the key takes the new value instead, so the
        commit cannot later overwrite it with the older one."""
        async with self._lock:
            table.data[key] = value
            topic = table.changelog_topic.get_topic_name()
            for entries in self._pending.values():
                if (topic, key) in entries:
                    entries[(topic, key)] = (partition, value)
                    return
            await table.changelog_topic.send(key=key, value=value, partition=partition)
