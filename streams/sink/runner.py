"""The sink's loop: fetch commands, submit them in batch jobs, commit only what Exstream accepted.

Guarantees:

- **Nothing lost.** A command's offset is committed only after the batch holding it is held by
  an Exstream job (submitted, or found by its external id) and its submission records were
  written (``acks=all``), or after it was dead-lettered. A crash re-reads every uncommitted
  command.
- **No second document, by the sink's own design** (Exstream composes whatever it is sent, twice
  if it is sent twice). Each batch is a range of offsets of one partition; its id is a hash of
  the group, topic, partition and range (:func:`streams.sink.batching.batch_id`), given to
  Exstream as the job's external id. Before a batch is sent, its range is written to
  ``exstream.sink-batches.v1`` (:mod:`streams.sink.intents`, awaited). After a restart or a
  rebalance, the ranges still open are cut again exactly (same ids) and each is looked up by its
  external id before it is sent: a job found means the batch is already at Exstream. After an
  ambiguous failure (client timeout, connection lost after sending) the batch is looked up the
  same way before it is sent again.
- **Pacing.** At most ``limit`` batches are in flight (:class:`AdaptiveLimit`: grows while Exstream
  keeps up, halves on 429/503/timeouts). Throttling (429) is answered by waiting its Retry-After
  (with jitter); failures (5xx, timeouts, connection errors) open a circuit breaker after
  ``breaker_threshold`` in a row, and retries back off exponentially with jitter, never sooner
  than a Retry-After. Retry decisions read the typed error's ``retriable`` flag.
- **Bad commands** (undecodable, or refused by Exstream as invalid: 400/413/422) go to
  ``<commands topic>.dlq`` with the reason. Exstream refuses a whole driver file for one bad
  customer record, so a refused batch is split in halves until each refused command is alone:
  only the commands Exstream refuses on their own are dead-lettered, the others still go through.

What remains possible, and why: a request that reaches Exstream *after* the sink's lookup (held in
a network for longer than the client timeout plus the lookup grace) could still make a second
job; the grace (``lookup_grace_s``) bounds that window, it cannot close it without an idempotent
submission in Exstream's API.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.codec import CodecError, Codecs
from streams.deadletter.letters import dead_letter_headers, dead_letter_of
from streams.domain.records import CompositionCommand, DeadLetter, Submission, TemplateVersion
from streams.errors import AirExstreamError
from streams.exstream.client import ExstreamClient
from streams.exstream.driver import batch_file, customer_record
from streams.exstream.errors import ExstreamError
from streams.routing.reference import ReferenceView
from streams.sink.batching import Batcher, Cut, Range, batch_id
from streams.sink.client import Accepted, Outcome, Rejected, Retry, classify
from streams.sink.intents import IntentLog
from streams.sink.metrics import SinkMetrics
from streams.sink.offsets import OffsetTracker
from streams.sink.policy import AdaptiveLimit, CircuitBreaker, backoff_s
from topology import names

log = logging.getLogger(__name__)

RECOVER_RETRY_PAUSE_S = 1.0
"""The pause before reading the intended batches again after a Kafka error."""

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"

SPLIT_ON = frozenset({400, 413, 422})
"""Refusals of a whole batch that one of its commands (or its size) can cause: split and retry."""


class SinkFailed(AirExstreamError):
    """A batch could not be completed (e.g. Kafka refused its records, the schema registry did
    not answer); the sink stopped with the batch's offsets uncommitted, so running it again
    completes it: retriable."""

    retriable = True


class SinkSettings(BaseSettings):
    """How the sink runs: from the environment (prefix ``AIR_EXSTREAM_SINK_``, e.g.
    ``AIR_EXSTREAM_SINK_BATCH_SIZE``); keyword arguments (the CLI's options, the topology's topic
    names) override. Kafka and Exstream settings live in ``KafkaSettings`` and
    ``ExstreamSettings``."""

    model_config = SettingsConfigDict(env_prefix="AIR_EXSTREAM_SINK_", extra="ignore", frozen=True)

    commands_topic: str
    submissions_topic: str
    batches_topic: str
    group_id: str = "air-exstream-sink"
    batch_size: int = 200
    initial_limit: int = 4
    max_limit: int = 32
    breaker_threshold: int = 3
    breaker_open_s: float = 5.0
    lookup_grace_s: float = 1.0
    """After an ambiguous failure, a lookup that finds nothing is repeated once after this
    pause before the batch is sent again (a request still travelling may land meanwhile)."""
    max_attempts: int | None = None
    """None: retry retryable failures for ever (the work must not be dropped)."""
    progress_log_s: float = 30.0
    """How often the sink logs one progress line (counts only, no record content) while it has
    work or something changed; 0: never."""
    recover_timeout_s: float = 60.0
    """How long one read of the intents topic may take on an assignment before it is tried
    again (three tries, then the sink stops rather than guess what was intended)."""


@dataclass(slots=True)
class Batch:
    partition: int
    first: int
    last: int
    commands: list[tuple[Record, CompositionCommand]]
    recovered: bool = False
    """Intended before a restart: look it up before sending."""

    def id(self, group: str, topic: str) -> str:
        return batch_id(group, topic, self.partition, self.first, self.last)


@dataclass
class Sink:
    settings: SinkSettings
    client: ExstreamClient
    consumer: AIOKafkaConsumer
    producer: AIOKafkaProducer
    templates: ReferenceView[TemplateVersion] | None = None
    consumer_kwargs: dict[str, Any] = field(default_factory=dict)
    """How to reach Kafka for reading the intents topic (no group)."""
    rng: random.Random = field(default_factory=random.Random)
    metrics: SinkMetrics = field(default_factory=SinkMetrics)
    codecs: Codecs = field(default_factory=Codecs)
    """The process's codecs (``Codecs.from_settings``): how submissions and dead letters are
    framed, and the registry Confluent-framed commands are read through."""

    def __post_init__(self) -> None:
        self.limit = AdaptiveLimit(
            limit=self.settings.initial_limit, maximum=self.settings.max_limit
        )
        self.breaker = CircuitBreaker(
            threshold=self.settings.breaker_threshold, open_s=self.settings.breaker_open_s
        )
        self.metrics.watch(
            inflight_batches=lambda: len(self._inflight),
            concurrency_limit=lambda: self.limit.limit,
            circuit_open=lambda: int(self.breaker.state.value != "closed"),
            circuit_opens=lambda: self.breaker.opens,
            token_refreshes=lambda: self.client.tokens.refreshes,
        )
        self.tracker = OffsetTracker()
        self.intents = IntentLog(
            self.producer,
            topic=self.settings.batches_topic,
            group=self.settings.group_id,
            commands_topic=self.settings.commands_topic,
        )
        self._batchers: dict[int, Batcher[Record, CompositionCommand]] = {}
        self._inflight: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self.failure: BaseException | None = None
        self._commit_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._assigned = asyncio.Event()
        """Set once the batches intended on the current assignment are recovered: records are
        cut only then (a fetch may complete while the rebalance listener still recovers)."""
        self._codec = self.codecs.for_topic(self.settings.commands_topic, CompositionCommand)
        self._submission_codec = self.codecs.for_topic(self.settings.submissions_topic, Submission)
        self._letter_codec = self.codecs.for_topic(
            names.dlq(self.settings.commands_topic), DeadLetter
        )
        self.started = time.monotonic()

    # ------------------------------------------------------------------ main loop

    async def run(self) -> None:
        topic = self.settings.commands_topic
        # the schemas are registered before anything is read: a registry that does not answer
        # stops the sink here, not after Exstream accepted a batch
        for codec in (self._submission_codec, self._letter_codec):
            await asyncio.to_thread(codec.prepare)
        self.consumer.subscribe([topic], listener=_Rebalance(self))
        reporter = (
            asyncio.ensure_future(self._report_progress(self.settings.progress_log_s))
            if self.settings.progress_log_s > 0
            else None
        )
        try:
            await self._loop()
        finally:
            if reporter is not None:
                reporter.cancel()
                await asyncio.gather(reporter, return_exceptions=True)
        if self.failure is not None:
            raise SinkFailed(str(self.failure)) from self.failure

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            await self._wait_for_room()
            if self._stopping.is_set():
                break
            fetched = await self.consumer.getmany(
                timeout_ms=200, max_records=self.settings.batch_size * 4
            )
            if fetched:
                await self._assigned.wait()
                if self._stopping.is_set():
                    break  # nothing fetched is started: its offsets stay uncommitted
            for tp, records in fetched.items():
                for cut in self._cuts(tp.partition, records):
                    self._start(cut)
        await self.drain()

    def progress(self) -> str:
        """One line of counts for the log: what the sink read, settled and holds."""
        m = self.metrics
        return (
            f"sink: read {m['commands_read']:.0f}, accepted {m['commands_accepted']:.0f}, "
            f"dead-lettered {m['dead_letters']:.0f}, commits {m['commits']:.0f}; "
            f"{len(self._inflight)} batch(es) in flight (limit {self.limit.limit}), "
            f"circuit {self.breaker.state.value}, partitions {sorted(self._batchers)}, "
            f"{'assigned' if self._assigned.is_set() else 'recovering or unassigned'}"
        )

    async def _report_progress(self, every_s: float) -> None:
        last = ""
        while True:
            await asyncio.sleep(every_s)
            line = self.progress()
            if line != last or self._inflight:
                log.info("%s", line)
                last = line

    def stop(self) -> None:
        self._stopping.set()
        self._changed.set()

    async def drain(self) -> None:
        """Wait for every batch in flight, then commit."""
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)
        await self._commit()

    async def _wait_for_room(self) -> None:
        while len(self._inflight) >= self.limit.limit:
            self._changed.clear()
            await self._changed.wait()

    async def recover(self, partitions: set[int]) -> None:
        """Assigned ``partitions``: the batches intended there before are cut again exactly.
        Each try is bounded (``recover_timeout_s``); after three the sink stops (raises)."""
        log.info(
            "sink: assigned partitions %s, reading the batches intended there",
            sorted(partitions),
        )
        tries = 3
        for attempt in range(1, tries + 1):
            try:
                async with asyncio.timeout(self.settings.recover_timeout_s):
                    recovered = await self._read_intended(partitions)
                break
            except TimeoutError:
                if attempt == tries:
                    raise
                log.warning(
                    "sink: reading the intended batches took over %.0f s (try %d of %d), again",
                    self.settings.recover_timeout_s,
                    attempt,
                    tries,
                )
            except KafkaError as exc:
                # e.g. no metadata yet from a broker that was just unreachable: reading is
                # read-only, so it is tried again like a hung read
                if attempt == tries:
                    raise
                log.warning(
                    "sink: reading the intended batches failed (try %d of %d), again in %.0f s: %s",
                    attempt,
                    tries,
                    RECOVER_RETRY_PAUSE_S,
                    exc,
                )
                await asyncio.sleep(RECOVER_RETRY_PAUSE_S)
        for p in partitions:
            self._batchers[p] = Batcher(self.settings.batch_size, recovered.get(p, []))
            self.metrics.inc("batches_recovered", len(recovered.get(p, [])))
        self._assigned.set()
        log.info("sink: partitions %s ready", sorted(partitions))

    async def _read_intended(self, partitions: set[int]) -> dict[int, list[Range]]:
        topic = self.settings.commands_topic
        committed: dict[int, int] = {}
        for p in partitions:
            offset = await self.consumer.committed(TopicPartition(topic, p))
            committed[p] = offset if offset is not None else 0
        return await self.intents.load(self.consumer_kwargs, committed)

    def _decode(self, record: Record) -> CompositionCommand:
        self.metrics.inc("commands_read")
        return self._codec.decode(record.value or b"", list(record.headers or ()))

    def _cuts(
        self, partition: int, records: Sequence[Record]
    ) -> list[Cut[Record, CompositionCommand]]:
        batcher = self._batchers.setdefault(partition, Batcher(self.settings.batch_size))
        return batcher.feed(records, lambda r: r.offset, self._decode)

    def _start(self, cut: Cut[Record, CompositionCommand]) -> None:
        if cut.bad is not None:
            record, exc = cut.bad
            if isinstance(exc, AirExstreamError) and exc.retriable:
                # the command is fine, what reading it needs is not (the schema registry): stop
                # with its offset uncommitted rather than dead-letter it; a restart reads it again
                log.error("sink cannot read command %s/%d: %s", record.topic, record.offset, exc)
                self.failure = exc
                self.stop()
                return
            code = exc.code if isinstance(exc, CodecError) else "DECODE_ERROR"
            self._start_dead_letter(record.partition, record, code, str(exc))
            return
        partition = cut.items[0][0].partition
        batch = Batch(partition, cut.first, cut.last, cut.items, recovered=cut.recovered)
        self.tracker.started(batch.partition, batch.first, batch.last)
        self._spawn(self._submit_tracked(batch))

    async def _submit_tracked(self, batch: Batch) -> None:
        if not batch.recovered:
            await self.intents.intend(batch.partition, batch.first, batch.last)
        await self._submit(batch)
        self.tracker.completed(batch.partition, batch.first)
        await self._commit()

    def _start_dead_letter(
        self, partition: int, record: ConsumerRecord[bytes, bytes], code: str, reason: str
    ) -> None:
        self.tracker.started(partition, record.offset, record.offset)

        async def letter() -> None:
            await self._dead_letter(record, code, reason)
            self.tracker.completed(partition, record.offset)
            await self._commit()

        self._spawn(letter())

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._inflight.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._inflight.discard(t)
            if not t.cancelled() and t.exception() is not None:
                # e.g. Kafka refused the submission records: stop rather than skip the batch;
                # its offset stays uncommitted and the next run submits it again
                log.error("sink batch failed, stopping: %r", t.exception())
                self.failure = t.exception()
                self._stopping.set()
            self._changed.set()

        task.add_done_callback(done)

    # ------------------------------------------------------------------ one batch

    def _driver_file(self, batch: Batch) -> bytes:
        records = []
        for _, command in batch.commands:
            template = None
            if self.templates is not None:
                key = f"{command.template_id}/{command.template_version}/{command.language}"
                template = self.templates.get(key)
            design = template.exstream_communication_id if template is not None else None
            if design is None:
                # Exstream will report the customer as failed; the sync may not have run yet
                self.metrics.inc("commands_without_exstream_communication")
            records.append(customer_record(command, exstream_communication_id=design))
        return batch_file(records)

    async def _lookup(self, external_id: str) -> Accepted | Retry:
        try:
            jobs = await self.client.orchestration.jobs_by_external_id(external_id)
        except ExstreamError as exc:
            outcome = classify(exc)
            if isinstance(outcome, Rejected):  # a refused lookup cannot say "not there"
                return Retry(f"lookup refused: HTTP {outcome.status}")
            return outcome
        self.metrics.inc("lookups")
        if jobs:
            self.metrics.inc("batches_found_at_exstream")
            return Accepted(jobs[0].id, recovered=True)
        return Retry("not found")

    async def _send(self, external_id: str, driver: bytes) -> Outcome:
        try:
            job_id = await self.client.orchestration.submit_batch(driver, external_id=external_id)
        except ExstreamError as exc:
            return classify(exc)
        return Accepted(job_id)

    async def _submit(self, batch: Batch) -> None:
        try:
            await self._submit_until_settled(batch)
        except BaseException:
            self.breaker.release()  # cancelled mid-probe: never leave the half-open probe taken
            raise

    async def _submit_until_settled(self, batch: Batch) -> None:
        external_id = batch.id(self.settings.group_id, self.settings.commands_topic)
        driver = self._driver_file(batch)
        attempt = 0
        must_look = batch.recovered
        grace = False
        while True:
            now = time.monotonic()
            if not self.breaker.allow(now):
                await asyncio.sleep(max(0.05, self.breaker.wait_s(now)))
                continue
            if must_look:
                found = await self._lookup(external_id)
                if isinstance(found, Accepted):
                    self.breaker.on_success()
                    await self._accepted(batch, found, external_id)
                    return
                if found.reason != "not found":
                    outcome: Outcome = found
                elif grace:
                    grace = False
                    self.breaker.release()
                    await asyncio.sleep(self.settings.lookup_grace_s)
                    continue
                else:
                    must_look = False
                    self.breaker.release()
                    continue
            else:
                attempt += 1
                self.metrics.inc("submissions")
                started = time.monotonic()
                outcome = await self._send(external_id, driver)
                self.metrics.submit_duration.observe(time.monotonic() - started)
            if isinstance(outcome, Accepted):
                self.breaker.on_success()
                self.limit.on_success()
                await self._accepted(batch, outcome, external_id)
                return
            if isinstance(outcome, Rejected):
                self.breaker.on_success()  # Exstream is up; the batch is the problem
                await self._rejected(batch, outcome)
                return
            assert isinstance(outcome, Retry)
            self.metrics.retries.labels(outcome.reason.split(":")[0].replace(" ", "_")).inc()
            if outcome.ambiguous:
                must_look, grace = True, True
            if outcome.pushback:
                self.limit.on_pushback()
                self.metrics.inc("pushbacks")
            if self.settings.max_attempts is not None and attempt >= self.settings.max_attempts:
                if outcome.ambiguous:
                    self.breaker.release()
                    continue  # never give up on a batch that may be at Exstream: look it up
                reason = f"gave up after {attempt} attempts: {outcome.reason}"
                await self._rejected(batch, Rejected(0, reason))
                return
            if outcome.throttled:
                # Exstream is up and said when to come back: fewer batches in flight and its
                # Retry-After (with jitter), no escalation and no circuit breaking
                wait = (outcome.retry_after_s or 1.0) * (1.0 + 0.5 * self.rng.random())
                self.breaker.release()
                await asyncio.sleep(wait)
                continue
            self.breaker.on_failure(time.monotonic(), outcome.retry_after_s)
            await asyncio.sleep(
                backoff_s(max(1, attempt), self.rng, retry_after_s=outcome.retry_after_s)
            )

    async def _accepted(self, batch: Batch, outcome: Accepted, external_id: str) -> None:
        now_ms = int(time.time() * 1000)
        sends = []
        for record, command in batch.commands:
            submission = Submission(
                communication_id=command.communication_id,
                customer_id=command.customer_id,
                job_id=outcome.job_id,
                correlation_id=external_id,
                outcome="recovered" if outcome.recovered else "accepted",
                source_partition=record.partition,
                source_offset=record.offset,
                submitted_at=now_ms,
            )
            sends.append(
                await self.producer.send(
                    self.settings.submissions_topic,
                    key=command.customer_id.encode(),
                    value=self._submission_codec.encode(submission),
                )
            )
        await asyncio.gather(*sends)
        self.metrics.inc("commands_accepted", len(batch.commands))
        if outcome.recovered:
            self.metrics.inc("commands_already_at_exstream", len(batch.commands))
        self.metrics.inc("batches_accepted")

    async def _rejected(self, batch: Batch, outcome: Rejected) -> None:
        if outcome.status in SPLIT_ON and len(batch.commands) > 1:
            half = len(batch.commands) // 2
            self.metrics.inc("batches_split")
            for part in (batch.commands[:half], batch.commands[half:]):
                await self._submit(
                    Batch(
                        batch.partition,
                        part[0][0].offset,
                        part[-1][0].offset,
                        part,
                        recovered=batch.recovered,
                    )
                )
            return
        for record, _ in batch.commands:
            await self._dead_letter(record, f"EXSTREAM_{outcome.status}", outcome.detail)

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], code: str, reason: str
    ) -> None:
        letter = dead_letter_of(
            record, error_type=code, reason=reason, failed_at=int(time.time() * 1000)
        )
        fut = await self.producer.send(
            names.dlq(record.topic),
            key=record.key,
            value=self._letter_codec.encode(letter),
            headers=dead_letter_headers(letter),
        )
        await fut
        self.metrics.inc("dead_letters")
        log.warning(
            "dead-lettered %s/%d/%d: %s", record.topic, record.partition, record.offset, code
        )

    async def _commit(self) -> None:
        async with self._commit_lock:
            ready = self.tracker.committable()
            if not ready:
                return
            topic = self.settings.commands_topic
            try:
                await self.consumer.commit(
                    {TopicPartition(topic, p): OffsetAndMetadata(o, "") for p, o in ready.items()}
                )
            except CommitFailedError as exc:
                # the group moved on without us (e.g. the coordinator was unreachable past the
                # session timeout): the consumer rejoins, the revocation forgets these
                # partitions and whoever gets them recovers their intended batches and looks
                # them up at Exstream by external id, so nothing is sent twice. Not fatal.
                self.metrics.inc("commits_lost_to_rebalance")
                log.warning(
                    "sink commit lost to a rebalance, the batches will be recovered: %s",
                    type(exc).__name__,
                )
                return
            self.metrics.inc("commits")
            for p, o in ready.items():
                await self.intents.committed(p, o)

    # ------------------------------------------------------------------ metrics

    def prometheus(self) -> str:
        return self.metrics.render()


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Revocation: finish the batches in flight and commit before letting partitions go.
    Assignment: recover the batches intended on the new partitions before fetching them."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    async def on_partitions_revoked(self, revoked: Any) -> None:
        partitions = {tp.partition for tp in revoked}
        self._sink._assigned.clear()
        log.info(
            "sink: partitions %s revoked, settling %d batch(es) in flight first",
            sorted(partitions),
            len(self._sink._inflight),
        )
        await self._sink.drain()
        self._sink.tracker.forget(partitions)
        self._sink.intents.forget(partitions)
        for p in partitions:
            self._sink._batchers.pop(p, None)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        sink = self._sink
        try:
            await sink.recover({tp.partition for tp in assigned})
        except Exception as exc:  # noqa: BLE001 - any failure here must stop the sink
            # without its intended batches the sink could send one twice: stop instead
            log.error("sink could not recover its intended batches, stopping: %s", exc)
            sink.failure = exc
            sink.stop()
            sink._assigned.set()
