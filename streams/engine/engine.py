"""The engine: one consumer and one transactional producer per process, handlers run one record
at a time inside Kafka transactions (the guarantees are :mod:`streams.engine.api`'s).

The loop, on the event loop thread, with zero-timeout calls into confluent-kafka (the blocking
transaction calls run in a worker thread while the loop goes on):

1. wait for the transaction in flight (if any) to be committed, then ``consume`` what was
   fetched into per-partition buffers; rebalance callbacks run here, between transactions (no
   transaction is open or in flight while ``consume`` runs), so a revocation has nothing to
   commit: it drops the revoked partitions' buffers and sets their store state aside (dropped
   when the next assignment does not give the partition back, or when the partitions were
   lost);
2. restore the store partitions of newly assigned partition numbers (a partition whose state was
   set aside is read on from where that state stood: a member keeps the state of the partitions
   a rebalance leaves it, rather than replay their changelogs; so are the files a clean stop
   left, :mod:`streams.engine.checkpoint`), then call ``on_assigned``;
3. run the timers that are due, each in a transaction of its own;
4. hand buffered records to their handlers, the next record of each partition group chosen by
   :func:`streams.engine.ordering.choose_next`, a batch at a time as
   :class:`streams.engine.transactions.CommitPolicy` says. What a batch's handlers send is held
   in memory; when the batch is complete the transaction begins, the held records and the
   stores' changes are produced, the handled positions sent (``send_offsets_to_transaction``)
   and the commit started (the positions sent and the commit, one call in a worker thread);
   while Kafka acknowledges it the loop handles the next batch from the buffers (its records
   held until the commit is done; a batch due before that goes on, up to
   :data:`_BATCH_CAP_FACTOR` times ``max_batch``, rather than wait). One transaction is in
   flight at a time.

A handler that raises, or any Kafka error, aborts the open transaction and ends :meth:`run` with
the error; an Engine runs once (its in-memory state is not trusted after a failure: a batch
handled ahead of a commit that failed was never produced).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from streams.engine import checkpoint
from streams.engine.api import (
    Handler,
    Headers,
    PartitionsChanged,
    Record,
    Store,
    Timer,
)
from streams.engine.assignment import held_numbers
from streams.engine.config import EngineConfig as EngineConfig  # the engine's settings
from streams.engine.config import (
    consumer_config,
    ends_reader_config,
    offsets_reader_config,
    producer_config,
    restorer_config,
)
from streams.engine.errors import EngineError, HandlerFailed, NotInTransaction
from streams.engine.partitions import TP, InputPartitions
from streams.engine.restore import restore
from streams.engine.retry import call_with_retry_async
from streams.engine.rocksdb import RocksDBStates
from streams.engine.stores import MemoryStore
from streams.engine.topics import create_changelogs, partition_counts
from streams.engine.transactions import CommitPolicy

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 30.0
"""How long :meth:`Engine.run` waits for its clients to close on the way out."""

_IDLE_SLEEP_S = 0.005
"""The loop's pause when nothing was fetched, handled or due."""

_BATCH_CAP_FACTOR = 4
"""A batch due while the commit before it is still in flight goes on, up to this many times
``max_batch`` records, rather than wait for that commit."""

_KEEP_LOOKUP_TIMEOUT_S = 5.0
"""How long a revocation waits for a changelog's high watermark, the offset a kept state stands
at (the partition's state is dropped, to be replayed whole, when the broker does not answer)."""

_CONSUME_ROUNDS = 4
"""``consume`` calls per cycle (each of up to ``max_batch`` records) while they come back full:
a backlog fills the buffers with several batches, so that the next batch can be handled while
the last one's commit is in flight (``consume`` itself waits for that commit)."""


class _Send(NamedTuple):  # a NamedTuple: a third of a frozen dataclass's cost, per record sent
    topic: str
    value: bytes | None
    key: bytes | None
    partition: int | None
    headers: Headers | None


@dataclass(slots=True)
class _Timer:
    interval_s: float
    fn: Timer
    due: float = 0.0


class _Outputs:
    """:class:`streams.engine.api.Outputs` holding what is sent in memory until the engine takes
    it (:meth:`take`) into the batch's transaction."""

    def __init__(self, in_transaction: Callable[[], bool]) -> None:
        self._in_transaction = in_transaction
        self._held: list[_Send] = []

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        if not self._in_transaction():
            raise NotInTransaction(f"send to {topic} outside a handler or timer")
        self._held.append(_Send(topic, value, key, partition, headers))

    def take(self) -> list[_Send]:
        held, self._held = self._held, []
        return held


CallGuard = Callable[[str], AbstractAsyncContextManager[None]]
"""Wraps every blocking transactional call (``guard(what)``), e.g. a deadline that ends a
process stuck in one: a hung broker can hold a call for as long as the client retries."""


@asynccontextmanager
async def _unguarded(_what: str) -> AsyncIterator[None]:
    yield


class Engine:
    """See the module docstring; register inputs, stores, timers and callbacks, then
    :meth:`run`. ``call_guard`` wraps each blocking transactional call (init, send offsets,
    commit, abort)."""

    def __init__(self, config: EngineConfig, *, call_guard: CallGuard = _unguarded) -> None:
        self.config = config
        self._guard = call_guard
        self.outputs = _Outputs(self.in_transaction)
        self._policy = CommitPolicy(
            max_batch=config.max_batch, commit_interval_ms=config.commit_interval_ms
        )
        self._inputs: dict[str, Handler] = {}
        self._stores: list[MemoryStore] = []
        self._timers: list[_Timer] = []
        self._on_assigned: list[PartitionsChanged] = []
        self._on_revoked: list[PartitionsChanged] = []
        self._on_committed: list[Callable[[float], None]] = []
        self._parts = InputPartitions(max_idle_ms=config.max_task_idle_ms)
        self._paused: set[TP] = set()
        self._pending_restore: set[int] = set()
        self._kept_at: dict[TP, int] = {}
        """Changelog partitions whose store state was set aside at a revocation: the offset that
        state stands at (the changelog's high watermark then)."""
        self._closing = False
        self._on_disk_at: dict[TP, int] = {}
        """Changelog partitions whose files the last clean stop left: the offset they stand at
        (:mod:`streams.engine.checkpoint`)."""
        self._unknown_offsets: set[TP] = set()
        """Assigned partitions whose committed offset was not read yet."""
        self._offsets_task: asyncio.Task[None] | None = None
        self._offsets_reader: Any = None
        self._ends_reader: Any = None
        self._client_lock = threading.Lock()
        """Held around a committed-offsets read (a worker thread) and around the closing: the
        reader is never closed under a call in flight."""
        self._partition_counts: dict[str, int] = {}
        self._active = False
        self._txn_open = False
        self._txn_positions: dict[TP, int] = {}
        """The batch being handled: the next offset per input partition it handled."""
        self._committing: asyncio.Task[None] | None = None
        """The transaction in flight: its offsets sent and its commit awaited in a thread."""
        self._ran = False
        self._consumer: Any = None
        self._producer: Any = None

    # ---------------------------------------------------------------- registration

    def input(self, topic: str, handler: Handler) -> None:
        if topic in self._inputs:
            raise EngineError(f"input {topic} registered twice")
        self._inputs[topic] = handler

    def store(self, name: str, *, changelog_topic: str, partitions: int) -> Store:
        """A store whose values are kept in memory, or on disk under ``config.state_dir``."""
        state_dir = self.config.state_dir
        store = MemoryStore(
            name,
            changelog_topic=changelog_topic,
            partitions=partitions,
            in_transaction=self.in_transaction,
            states=None if state_dir is None else RocksDBStates(state_dir, name),
        )
        self._stores.append(store)
        return store

    def timer(self, interval_s: float, timer: Timer) -> None:
        self._timers.append(_Timer(interval_s, timer, time.monotonic() + interval_s))

    def on_assigned(self, fn: PartitionsChanged) -> None:
        self._on_assigned.append(fn)

    def on_revoked(self, fn: PartitionsChanged) -> None:
        self._on_revoked.append(fn)

    def on_committed(self, fn: Callable[[float], None]) -> None:
        """``fn(seconds)`` after each committed transaction: how long its commit took (the
        stores' changes produced, the positions sent, the commit)."""
        self._on_committed.append(fn)

    # ---------------------------------------------------------------- state seen from outside

    def in_transaction(self) -> bool:
        """True while a handler or timer runs (sends and puts are valid)."""
        return self._active

    def positions(self) -> dict[TP, int]:
        """The next offset to handle per assigned input partition (where known: the committed
        offset, then the handled records; past the end's transaction markers once read to it)."""
        return self._parts.positions()

    def end_offsets(self) -> dict[TP, int]:
        """The last known end per assigned input partition (none before its first fetch): where
        the partition was last read to its end (the last stable offset) while nothing new was
        fetched since, else the high watermark of the last fetch (which counts records of open
        transactions: a partition is caught up when its position equals this end)."""
        consumer = self._consumer
        if consumer is None:
            return self._parts.ends(None)

        def high_watermark(tp: TP) -> int:
            _low, high = consumer.get_watermark_offsets(TopicPartition(*tp), cached=True)
            return int(high)

        return self._parts.ends(high_watermark)

    # ---------------------------------------------------------------- the run

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (the open transaction committed, the group left) or an
        error (the transaction aborted, the error raised: :class:`HandlerFailed` for a handler
        or timer, :class:`EngineError` for Kafka)."""
        if self._ran:
            raise EngineError("an Engine runs once")
        self._ran = True
        if not self._inputs:
            raise EngineError("no input registered")
        config = self.config
        if config.state_dir is not None:  # before any database is opened
            self._on_disk_at = checkpoint.take(config.state_dir)
        await asyncio.to_thread(
            create_changelogs,
            config.kafka,
            self._stores,
            timeout_s=config.restore_timeout_s,
            replication_factor=config.changelog_replication_factor,
        )
        self._producer = Producer(producer_config(config))
        # a new cluster's transaction coordinator may be loading for a while: tried as long as
        # a restore may take, not only for one transaction timeout
        await self._kafka_call(
            self._producer.init_transactions, self._timeout_s(), retry_s=config.restore_timeout_s
        )
        self._consumer = Consumer(consumer_config(config))
        restorer = Consumer(restorer_config(config))
        self._offsets_reader = Consumer(offsets_reader_config(config))
        self._ends_reader = Consumer(ends_reader_config(config))
        at_stop: dict[TP, int] = {}
        try:
            self._partition_counts = await asyncio.to_thread(
                partition_counts,
                self._consumer,
                list(self._inputs),
                timeout_s=config.restore_timeout_s,
            )
            self._consumer.subscribe(
                list(self._inputs),
                on_assign=self._assigned,
                on_revoke=self._revoked,
                on_lost=self._lost,
            )
            while not stop.is_set():
                await self._cycle(restorer)
            await self._settle()
            at_stop = self._changelog_ends() if config.state_dir is not None else {}
        except BaseException:
            await self._abort()
            raise
        finally:
            if self._offsets_task is not None:
                self._offsets_task.cancel()
            closed = self._close(restorer)
            closed = self._close_stores() and closed
        if at_stop and closed and config.state_dir is not None:  # a clean stop
            # every database flushed and closed: their files stand at these offsets
            checkpoint.write(config.state_dir, at_stop)

    def _changelog_ends(self) -> dict[TP, int]:
        """The high watermark of every held store partition's changelog (nothing in flight:
        where the held states stand); empty when the broker does not answer (the next process
        then replays them whole)."""
        ends: dict[TP, int] = {}
        try:
            for store in self._stores:
                for partition in store.partitions():
                    tp = (store.changelog_topic, partition)
                    ends[tp] = self._changelog_end(tp)
        except KafkaException as exc:
            log.warning("engine %s: the stores' offsets not noted: %s", self.config.app_id, exc)
            return {}
        return ends

    def _close(self, restorer: Any) -> bool:
        """Close the clients, for at most :data:`CLOSE_TIMEOUT_S`. After a broker outage a
        client's close can block for minutes (librdkafka waits on requests that will never be
        answered): the closing runs in a daemon thread the process does not wait for, and the
        event loop is held meanwhile (no task sees half-closed clients). True when every client
        closed without an error."""
        consumer, producer, reader = self._consumer, self._producer, self._offsets_reader
        self._closing = True  # the revocation that leaving the group brings keeps no state
        closed_all = [False]

        def close() -> None:
            try:
                # leaves the group: its partitions move at once (with static membership: after
                # the session timeout, unless the same instance id comes back before)
                consumer.close()
                with self._client_lock:
                    reader.close()
                restorer.close()
                self._ends_reader.close()
                producer.flush(10)
                producer.close()
                closed_all[0] = True
            except KafkaException as exc:  # an error on the way out does not hide the first
                log.warning("engine %s: closing: %s", self.config.app_id, exc)

        closing = threading.Thread(target=close, name="engine-close", daemon=True)
        closing.start()
        closing.join(CLOSE_TIMEOUT_S)
        self._consumer = None  # end_offsets() from other tasks: nothing assigned now
        if not closing.is_alive():
            return closed_all[0]
        log.warning(
            "engine %s: the Kafka clients did not close in %.0f s (a broker unreachable?); "
            "left behind: their open transaction is aborted by the next process with this "
            "instance id, or by the transaction timeout",
            self.config.app_id,
            CLOSE_TIMEOUT_S,
        )
        return False

    def _close_stores(self) -> bool:
        """Close the stores' partitions still held (on disk: their databases flushed and
        closed; leaving the group already dropped them, unless the clients did not close in
        time). An error here is said, not raised: it would hide the one that ended the run.
        True when every store closed without an error."""
        closed = True
        for store in self._stores:
            try:
                store.close()
            except Exception as exc:  # noqa: BLE001 - rocksdict raises plain Exception
                log.warning("engine %s: closing store %s: %s", self.config.app_id, store.name, exc)
                closed = False
        return closed

    async def _cycle(self, restorer: Any) -> None:
        await self._settle()  # nothing in flight while consume may run rebalance callbacks
        msgs = self._consume()
        if self._unknown_offsets:
            self._read_committed_offsets_in_background()
        if self._pending_restore:
            await self._restore(restorer)
        ran = await self._run_due_timers()
        handled = await self._handle_batch()
        # an idle loop sleeps a little; a busy one still lets other tasks run between cycles
        await asyncio.sleep(0 if msgs or handled or ran else _IDLE_SLEEP_S)

    # ---------------------------------------------------------------- records

    def _consume(self) -> int:
        """Up to :data:`_CONSUME_ROUNDS` ``consume`` calls while they come back full; the number
        of messages (records, ends, errors) they gave."""
        got = 0
        for _ in range(_CONSUME_ROUNDS):
            self._pause_full_buffers()
            msgs = self._consumer.consume(self.config.max_batch, timeout=0)
            self._buffer(msgs)
            got += len(msgs)
            if len(msgs) < self.config.max_batch:
                break
        return got

    def _buffer(self, msgs: list[Any]) -> None:
        parts = self._parts
        for msg in msgs:
            error = msg.error()
            tp = (msg.topic(), msg.partition())
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    parts.reached_end(tp, msg.offset())
                    continue
                if error.fatal():
                    raise EngineError(f"consuming {tp[0]}[{tp[1]}]: {error}")
                # the client retries (a broker away, a topic not there yet): say it, go on
                log.warning("engine %s: consumer: %s", self.config.app_id, error)
                continue
            _kind, timestamp_ms = msg.timestamp()
            parts.add(
                Record(
                    topic=tp[0],
                    partition=tp[1],
                    offset=msg.offset(),
                    key=msg.key(),
                    value=msg.value(),
                    headers=msg.headers(),
                    timestamp_ms=timestamp_ms,
                )
            )

    def _pause_full_buffers(self) -> None:
        """A partition with ``2 * max_batch`` records buffered is paused until it is down to
        ``max_batch``: the buffer stays bounded while a group waits for a lagging input."""
        full, drained = [], []
        for tp in self._parts.assigned:
            size = self._parts.buffered(tp)
            if tp not in self._paused and size >= 2 * self.config.max_batch:
                full.append(tp)
            elif tp in self._paused and size < self.config.max_batch:
                drained.append(tp)
        if full:
            self._consumer.pause([TopicPartition(*tp) for tp in full])
            self._paused.update(full)
        if drained:
            self._consumer.resume([TopicPartition(*tp) for tp in drained])
            self._paused.difference_update(drained)

    async def _handle_batch(self) -> int:
        """Handle the buffered records, batch after batch, each batch's commit started as soon
        as the one before is committed: the next batch is handled meanwhile. Returns the number
        handled (none is left uncommitted; the last commit may still be in flight)."""
        handled = 0
        while self._parts.has_buffered():
            count = await self._handle_one_batch()
            if not count:
                break
            handled += count
            await self._settle()
            self._start_commit()
            # the commit task runs up to its worker thread now, not at the end of the next
            # batch: handlers seldom give the loop a turn
            await asyncio.sleep(0)
        return handled

    async def _handle_one_batch(self) -> int:
        # once per record handed over: the names it needs are looked up once per batch
        parts, inputs, due = self._parts, self._inputs, self._policy.due
        positions, next_offsets = self._txn_positions, parts.next_offsets
        monotonic = time.monotonic
        batch_cap = self._policy.max_batch * _BATCH_CAP_FACTOR
        handled = 0
        opened = now = monotonic()
        while True:
            record = parts.take_next(int(now * 1000))
            if record is None:
                return handled
            self._active = True
            try:
                await inputs[record.topic](record)
            except Exception as exc:
                # the type only: an exception's text may quote the record (personal data)
                raise HandlerFailed(
                    f"the handler of {record.topic} failed on record "
                    f"{record.topic}[{record.partition}]@{record.offset}: {type(exc).__name__}"
                ) from exc
            finally:
                self._active = False
            tp, position = (record.topic, record.partition), record.offset + 1
            positions[tp] = next_offsets[tp] = position  # InputPartitions.handled, inlined
            handled += 1
            now = monotonic()
            if due(handled=handled, open_ms=(now - opened) * 1000, nothing_left=False):
                # while the last commit is still in flight the batch goes on (up to a bound)
                # rather than wait for it: the loop is never idle while records are buffered
                committing = self._committing
                if committing is None or committing.done() or handled >= batch_cap:
                    return handled

    async def _run_due_timers(self) -> int:
        ran = 0
        for timer in self._timers:
            now = time.monotonic()
            if now < timer.due:
                continue
            timer.due = now + timer.interval_s
            await self._settle()
            self._active = True
            try:
                await timer.fn()
            except Exception as exc:
                raise HandlerFailed(f"a timer failed: {type(exc).__name__}") from exc
            finally:
                self._active = False
            self._start_commit(fence=True)
            ran += 1
        return ran

    # ---------------------------------------------------------------- transactions

    def _produce(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        """Queue one record in the open transaction (waits while the producer queue is full)."""
        while True:
            try:
                self._producer.produce(
                    topic,
                    value=value,
                    key=key,
                    partition=-1 if partition is None else partition,
                    headers=list(headers) if headers else None,
                )
                return
            except BufferError:
                self._producer.poll(0.05)
            except KafkaException as exc:  # e.g. an unknown topic, a record too large
                raise EngineError(f"producing to {topic}: {exc}") from exc

    def _start_commit(self, *, fence: bool = False) -> None:
        """Begin a transaction with what was handled since the last one (the held records, the
        stores' changes, the handled positions) and start committing it in the background
        (:meth:`_settle` waits for it). Nothing handled, sent or put: no transaction. ``fence``
        (a timer's transaction): when it wrote anything, the positions already handled are sent
        too, so that a member the group has moved on from (a zombie) cannot commit it."""
        if self._committing is not None:
            raise EngineError("a transaction is already in flight")
        changes = [change for store in self._stores for change in store.take_changes()]
        sends = self.outputs.take()
        if fence and (sends or changes):
            parts = self._parts
            for tp, offset in parts.next_offsets.items():
                if tp in parts.assigned:
                    self._txn_positions.setdefault(tp, offset)
        if not (sends or changes or self._txn_positions):
            return
        started = time.monotonic()
        try:
            self._producer.begin_transaction()
        except KafkaException as exc:
            raise EngineError(f"beginning a transaction: {exc}") from exc
        self._txn_open = True
        produce = self._producer.produce
        for topic, value, key, partition, headers in sends:
            try:  # the usual case, without a call of _produce per record
                produce(
                    topic,
                    value=value,
                    key=key,
                    partition=-1 if partition is None else partition,
                    headers=list(headers) if headers else None,
                )
            except (BufferError, KafkaException):
                self._produce(topic, value, key=key, partition=partition, headers=headers)
        for topic, partition, key, value in changes:
            try:
                produce(topic, value=value, key=key, partition=partition)
            except (BufferError, KafkaException):
                self._produce(topic, value, key=key, partition=partition)
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._txn_positions.items()]
        self._txn_positions = {}
        self._committing = asyncio.get_running_loop().create_task(self._commit(offsets, started))

    async def _commit(self, offsets: list[Any], started: float) -> None:
        """Send the positions and commit the open transaction: both in one call in a worker
        thread, one guarded block (the commit goes on while the loop handles the next batch
        without handing control back between the two)."""
        producer, timeout_s = self._producer, self._timeout_s()
        metadata = self._consumer.consumer_group_metadata() if offsets else None

        def commit() -> None:
            if offsets:
                self._retrying(
                    producer.send_offsets_to_transaction, offsets, metadata, timeout_s,
                    retry_s=timeout_s,
                )  # fmt: skip
            self._retrying(producer.commit_transaction, timeout_s, retry_s=timeout_s)

        async with self._guard("commit_transaction"):
            await asyncio.to_thread(commit)
        self._txn_open = False
        for fn in self._on_committed:
            fn(time.monotonic() - started)

    async def _settle(self) -> None:
        """Wait for the transaction in flight, if any, to be committed (its error raised)."""
        task, self._committing = self._committing, None
        if task is not None:
            await task

    async def _abort(self) -> None:
        task, self._committing = self._committing, None
        if task is not None:
            # a commit in flight is let finish (or fail) before anything is aborted; its error,
            # if any, is said: the one that brought us here is the one raised
            await asyncio.wait([task])
            if not task.cancelled() and task.exception() is not None:
                log.warning("engine %s: commit: %s", self.config.app_id, task.exception())
        for store in self._stores:
            store.discard_changes()
        self.outputs.take()
        self._txn_positions = {}
        if not self._txn_open or self._producer is None:
            return
        self._txn_open = False
        try:
            async with self._guard("abort_transaction"):
                await asyncio.to_thread(self._producer.abort_transaction, self._timeout_s())
        except KafkaException as exc:  # the error that brought us here is the one to raise
            log.warning("engine %s: abort failed: %s", self.config.app_id, exc)

    async def _kafka_call(self, fn: Any, *args: Any, retry_s: float | None = None) -> None:
        """A blocking transactional call in a worker thread, guarded, tried again as
        :meth:`_retrying` says for ``retry_s`` (default: the transaction timeout)."""
        name = getattr(fn, "__name__", "kafka")
        retry = self._timeout_s() if retry_s is None else retry_s
        async with self._guard(name):
            await asyncio.to_thread(self._retrying, fn, *args, retry_s=retry)

    def _retrying(self, fn: Any, *args: Any, retry_s: float) -> None:
        """``fn(*args)`` (blocking: in a worker thread), tried again while librdkafka says the
        error is retriable (a timeout, a coordinator moving), for ``retry_s``; any other error
        ends the run (the transaction is aborted by the caller)."""
        name = getattr(fn, "__name__", "kafka")
        deadline = time.monotonic() + retry_s
        while True:
            try:
                fn(*args)
                return
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                retriable = getattr(error, "retriable", lambda: False)()
                if not retriable or time.monotonic() >= deadline:
                    raise EngineError(f"{name}: {exc}") from exc
                log.warning("engine %s: %s: %s; trying again", self.config.app_id, name, exc)
                time.sleep(0.1)

    def _timeout_s(self) -> float:
        return self.config.transaction_timeout_ms / 1000

    # ---------------------------------------------------------------- rebalances

    def _assigned(self, consumer: Any, partitions: list[Any]) -> None:
        """Inside ``consume`` (no transaction open): note the partitions; their committed
        offsets are read and their stores restored before any record is handled."""
        parts = self._parts
        held = self._held()
        consumer.assign(partitions)
        consumer.resume(partitions)  # a pause of an earlier assignment does not carry over
        tps = [(tp.topic, tp.partition) for tp in partitions]
        parts.assign(tps)
        self._unknown_offsets.update(tps)
        new = self._held() - held
        self._pending_restore |= new
        self._regroup()
        given_back = self._held()
        dropped = {p for store in self._stores for p in store.suspended()} - given_back
        for store in self._stores:
            store.drop(dropped)
        self._kept_at = {tp: o for tp, o in self._kept_at.items() if tp[1] in given_back}
        log.info("engine %s: assigned partitions %s", self.config.app_id, sorted(new))

    def _lost(self, consumer: Any, partitions: list[Any]) -> None:
        """Partitions the group gave to others without a revocation (this member was too late):
        their state is dropped, as others may have written their changelogs already."""
        self._revoked(consumer, partitions, keep=False)

    def _revoked(self, consumer: Any, partitions: list[Any], *, keep: bool = True) -> None:
        """Inside ``consume`` or ``close`` (no transaction open: nothing to commit): drop the
        revoked partitions' buffers, set their store state aside (``keep``, unless closing)
        or drop it, then call ``on_revoked``."""
        parts = self._parts
        held = self._held()
        tps = {(tp.topic, tp.partition) for tp in partitions}
        paused = [TopicPartition(*tp) for tp in tps & self._paused]
        if paused:
            consumer.resume(paused)
        parts.revoke(tps)
        self._paused -= tps
        self._unknown_offsets -= tps
        gone = held - self._held()
        kept = self._keep(gone - self._pending_restore) if keep and not self._closing else set()
        for store in self._stores:
            store.suspend(kept)
            store.drop(gone - kept)
        self._pending_restore -= gone
        self._regroup()
        if not gone:
            return  # e.g. a reference topic's partition moved: no partition number changed
        log.info("engine %s: revoked partitions %s", self.config.app_id, sorted(gone))
        for fn in self._on_revoked:
            fn(frozenset(gone))

    def _keep(self, numbers: set[int]) -> set[int]:
        """The partition numbers among ``numbers`` whose store state can be set aside: each of
        their changelog partitions' high watermark read (where the state stands, every
        transaction of this process being committed by now) and noted in ``_kept_at``."""
        kept: set[int] = set()
        for number in sorted(numbers):
            changelogs = [
                (store.changelog_topic, number)
                for store in self._stores
                if number < store.partition_count
            ]
            try:
                ends = {tp: self._changelog_end(tp) for tp in changelogs}
            except KafkaException as exc:  # replayed whole if it comes back: nothing lost
                log.warning(
                    "engine %s: partition %d's state not kept: %s", self.config.app_id, number, exc
                )
                continue
            self._kept_at.update(ends)
            kept.add(number)
        return kept

    def _changelog_end(self, tp: TP) -> int:
        """A changelog partition's high watermark, asked of the broker now (blocking, at most
        :data:`_KEEP_LOOKUP_TIMEOUT_S`; raises ``KafkaException``)."""
        _low, high = self._ends_reader.get_watermark_offsets(
            TopicPartition(*tp), timeout=_KEEP_LOOKUP_TIMEOUT_S, cached=False
        )
        return int(high)

    def _held(self) -> set[int]:
        return held_numbers(
            self._parts.assigned,
            self._partition_counts,
            (store.partition_count for store in self._stores),
        )

    def _regroup(self) -> None:
        self._parts.regroup(list(self._inputs), self._partition_counts)

    def _read_committed_offsets_in_background(self) -> None:
        """Start :meth:`_read_committed_offsets` unless it is running. In the background, not
        awaited by the loop: the group coordinator answers a partition's committed offset only
        once no transaction with offsets for it is pending (KIP-447), and a member that died
        with one open holds it until its transaction times out: meanwhile the loop
        goes on with every other partition and keeps taking part in the group (the consumer
        itself starts a partition only at a stable committed offset)."""
        task = self._offsets_task
        if task is None or task.done():
            self._offsets_task = asyncio.get_running_loop().create_task(
                self._read_committed_offsets()
            )

    async def _read_committed_offsets(self) -> None:
        """The group's committed offsets of newly assigned partitions (for :meth:`positions`
        before their first record is handled), read off the event loop thread. Not known yet
        after the transaction timeout: said, and asked again a second later (nothing but the
        positions reported depends on it)."""
        asked = [TopicPartition(*tp) for tp in sorted(self._unknown_offsets)]
        reader, lock = self._offsets_reader, self._client_lock

        def read(partitions: list[Any], timeout: float) -> list[Any]:
            with lock:
                return list(reader.committed(partitions, timeout=timeout))

        try:
            # the group coordinator may be loading or moving (a new group, a broker restarted)
            committed = await call_with_retry_async(
                read, asked, what="reading committed offsets", timeout_s=self._timeout_s(),
                timeout=10.0,
            )  # fmt: skip
        except EngineError as exc:
            log.warning("engine %s: %s; asking again", self.config.app_id, exc)
            await asyncio.sleep(1.0)
            return
        for tp in committed:
            key = (tp.topic, tp.partition)
            if key in self._unknown_offsets:
                self._parts.committed(key, tp.offset)
                self._unknown_offsets.discard(key)

    async def _restore(self, restorer: Any) -> None:
        numbers = frozenset(self._pending_restore)
        targets = {
            (store.changelog_topic, p): store
            for store in self._stores
            for p in numbers
            if p < store.partition_count
        }
        resume_from: dict[TP, int] = {}
        kept: set[int] = set()
        on_disk: set[int] = set()
        for tp, store in targets.items():
            offset = self._kept_at.pop(tp, None)
            if offset is not None and store.resume(tp[1]):
                resume_from[tp] = offset
                kept.add(tp[1])
                continue
            offset = self._on_disk_at.pop(tp, None)
            if offset is not None and store.reopen(tp[1]):
                resume_from[tp] = offset
                on_disk.add(tp[1])
        started = time.monotonic()
        read = await restore(
            restorer,
            targets,
            ends_reader=self._ends_reader,
            timeout_s=self.config.restore_timeout_s,
            resume_from=resume_from,
        )
        self._pending_restore -= numbers
        log.info(
            "engine %s: restored %d changelog records of partitions %s in %.1f s%s%s",
            self.config.app_id,
            read,
            sorted(numbers),
            time.monotonic() - started,
            f" (the state of {sorted(kept)} kept through the rebalance)" if kept else "",
            f" (the files of {sorted(on_disk)} read on from the last clean stop)"
            if on_disk
            else "",
        )
        for fn in self._on_assigned:
            fn(numbers)
