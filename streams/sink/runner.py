"""The sink's loop: fetch commands, submit them in batch jobs, commit only what Exstream accepted.

Guarantees:

- **Nothing lost.** A command's offset is committed only after the batch holding it was accepted
  by Exstream (202, or 409 "all already accepted") and its submission records were written
  (``acks=all``), or after it was dead-lettered. A crash re-reads every uncommitted command.
- **No second document.** A re-read command is submitted again with the same communication id;
  Exstream refuses to compose an id twice (the emulator enforces and counts it), and after an
  ambiguous failure (connection error, client timeout) the sink first asks Exstream whether the
  batch's correlation id already made a job before resubmitting.
- **Pacing.** At most ``limit`` batches are in flight (:class:`AdaptiveLimit`: grows while Exstream
  keeps up, halves on 429/503/timeouts). Throttling (429) is answered by waiting its Retry-After
  (with jitter); failures (5xx, timeouts, connection errors) open a circuit breaker after
  ``breaker_threshold`` in a row, and retries back off exponentially with jitter, never sooner
  than a Retry-After.
- **Bad commands** (undecodable, or refused by Exstream as invalid: 400/413/422) go to
  ``<commands topic>.dlq`` with the reason. Exstream refuses a whole job for one bad command, so a
  refused batch is split in halves until each refused command is alone: only the commands Exstream
  refuses on their own are dead-lettered, the others of their batch still go through.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.structs import OffsetAndMetadata

from streams.codec import CodecError, codec_for
from streams.deadletter.letters import dead_letter_headers, make_dead_letter
from streams.domain.records import CompositionCommand, DeadLetter, Submission
from streams.sink.client import Accepted, ExstreamClient, Rejected, Retry
from streams.sink.offsets import OffsetTracker
from streams.sink.policy import AdaptiveLimit, CircuitBreaker, backoff_s
from topology import names

log = logging.getLogger(__name__)


SPLIT_ON = frozenset({400, 413, 422})
"""Refusals of a whole batch that one of its commands (or its size) can cause: split and retry."""


class SinkFailed(RuntimeError):
    """A batch could not be completed (e.g. Kafka refused its records); the sink stopped."""


@dataclass(frozen=True, slots=True)
class SinkSettings:
    commands_topic: str
    submissions_topic: str
    group_id: str = "air-exstream-sink"
    batch_size: int = 200
    initial_limit: int = 4
    max_limit: int = 32
    breaker_threshold: int = 3
    breaker_open_s: float = 5.0
    request_timeout_s: float = 30.0
    max_attempts: int | None = None
    """None: retry retryable failures for ever (the work must not be dropped)."""


@dataclass(slots=True)
class Batch:
    partition: int
    first: int
    last: int
    commands: list[tuple[ConsumerRecord[bytes, bytes], CompositionCommand]]

    def correlation_id(self, topic: str) -> str:
        return f"{topic}/{self.partition}/{self.first}-{self.last}"


def to_item(command: CompositionCommand) -> dict[str, Any]:
    """A command as one communication of an Exstream batch job."""
    recipient: dict[str, Any] = {}
    if command.recipient.email:
        recipient["email"] = command.recipient.email
    if command.recipient.phone:
        recipient["phone"] = command.recipient.phone
    if command.recipient.postal_address is not None:
        a = command.recipient.postal_address
        recipient["postalAddress"] = {
            "line1": a.line1,
            "line2": a.line2,
            "city": a.city,
            "region": a.region,
            "postalCode": a.postal_code,
            "country": a.country,
        }
    return {
        "communicationId": command.communication_id,
        "customerId": command.customer_id,
        "templateId": command.template_id,
        "templateVersion": command.template_version,
        "language": command.language,
        "channel": command.channel,
        "recipient": recipient,
        "data": command.data,
        "regulatory": command.regulatory,
    }


@dataclass
class Sink:
    settings: SinkSettings
    client: ExstreamClient
    consumer: AIOKafkaConsumer
    producer: AIOKafkaProducer
    rng: random.Random = field(default_factory=random.Random)
    metrics: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.limit = AdaptiveLimit(
            limit=self.settings.initial_limit, maximum=self.settings.max_limit
        )
        self.breaker = CircuitBreaker(
            threshold=self.settings.breaker_threshold, open_s=self.settings.breaker_open_s
        )
        self.tracker = OffsetTracker()
        self._inflight: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self.failure: BaseException | None = None
        self._commit_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._codec = codec_for(CompositionCommand)
        self._submission_codec = codec_for(Submission)
        self._letter_codec = codec_for(DeadLetter)
        self.started = time.monotonic()

    # ------------------------------------------------------------------ main loop

    async def run(self) -> None:
        topic = self.settings.commands_topic
        self.consumer.subscribe([topic], listener=_Drain(self))
        while not self._stopping.is_set():
            await self._wait_for_room()
            if self._stopping.is_set():
                break
            fetched = await self.consumer.getmany(
                timeout_ms=200, max_records=self.settings.batch_size * 4
            )
            for tp, records in fetched.items():
                for batch in self._batches(tp.partition, records):
                    self._start(batch)
        await self.drain()
        if self.failure is not None:
            raise SinkFailed(str(self.failure)) from self.failure

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

    def _batches(
        self, partition: int, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> list[Batch]:
        batches: list[Batch] = []
        current: list[tuple[ConsumerRecord[bytes, bytes], CompositionCommand]] = []
        for record in records:
            self.metrics["commands_read"] += 1
            try:
                command = self._codec.decode(record.value or b"", list(record.headers or ()))
            except CodecError as exc:
                # one-command batch so its offset is tracked like the others
                self._start_dead_letter(partition, record, exc.code, str(exc))
                continue
            current.append((record, command))
            if len(current) >= self.settings.batch_size:
                batches.append(
                    Batch(partition, current[0][0].offset, current[-1][0].offset, current)
                )
                current = []
        if current:
            batches.append(Batch(partition, current[0][0].offset, current[-1][0].offset, current))
        return batches

    def _start(self, batch: Batch) -> None:
        self.tracker.started(batch.partition, batch.first, batch.last)
        self._spawn(self._submit_tracked(batch))

    async def _submit_tracked(self, batch: Batch) -> None:
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

    async def _submit(self, batch: Batch) -> None:
        topic = self.settings.commands_topic
        correlation = batch.correlation_id(topic)
        items = [to_item(c) for _, c in batch.commands]
        attempt = 0
        ambiguous = False
        while True:
            now = time.monotonic()
            if not self.breaker.allow(now):
                await asyncio.sleep(max(0.05, self.breaker.wait_s(now)))
                continue
            if ambiguous:
                found = await self._find(correlation)
                if found is not None:
                    self.breaker.on_success()
                    await self._accepted(batch, found, correlation)
                    return
            attempt += 1
            self.metrics["submissions"] += 1
            started = time.monotonic()
            outcome = await self.client.submit(correlation, items)
            self.metrics["submit_seconds_total_ms"] += int((time.monotonic() - started) * 1000)
            if isinstance(outcome, Accepted):
                self.breaker.on_success()
                self.limit.on_success()
                await self._accepted(batch, outcome, correlation)
                return
            if isinstance(outcome, Rejected):
                self.breaker.on_success()  # Exstream is up; the batch is the problem
                await self._rejected(batch, outcome)
                return
            assert isinstance(outcome, Retry)
            self.metrics[f"retries_{outcome.reason.split(':')[0].replace(' ', '_')}"] += 1
            ambiguous = outcome.ambiguous
            if outcome.pushback:
                self.limit.on_pushback()
                self.metrics["pushbacks"] += 1
            if self.settings.max_attempts is not None and attempt >= self.settings.max_attempts:
                reason = f"gave up after {attempt} attempts: {outcome.reason}"
                await self._rejected(batch, Rejected(0, reason))
                return
            if outcome.throttled:
                # Exstream is up and said when to come back: fewer batches in flight and its
                # Retry-After (with jitter), no escalation and no circuit breaking
                wait = (outcome.retry_after_s or 1.0) * (1.0 + 0.5 * self.rng.random())
                await asyncio.sleep(wait)
                continue
            self.breaker.on_failure(time.monotonic(), outcome.retry_after_s)
            await asyncio.sleep(backoff_s(attempt, self.rng, retry_after_s=outcome.retry_after_s))

    async def _find(self, correlation: str) -> Accepted | None:
        try:
            return await self.client.find(correlation)
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def _accepted(self, batch: Batch, outcome: Accepted, correlation: str) -> None:
        now_ms = int(time.time() * 1000)
        duplicate = bool(outcome.duplicate_jobs)
        sends = []
        for record, command in batch.commands:
            status = outcome.items.get(command.communication_id)
            submission = Submission(
                communication_id=command.communication_id,
                customer_id=command.customer_id,
                job_id=outcome.job_id,
                correlation_id=correlation,
                outcome="duplicate" if duplicate or status == "duplicate" else "accepted",
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
        self.metrics["commands_accepted"] += len(batch.commands)
        if duplicate:
            self.metrics["commands_already_accepted"] += len(batch.commands)
        self.metrics["batches_accepted"] += 1

    async def _rejected(self, batch: Batch, outcome: Rejected) -> None:
        if outcome.status in SPLIT_ON and len(batch.commands) > 1:
            half = len(batch.commands) // 2
            self.metrics["batches_split"] += 1
            for part in (batch.commands[:half], batch.commands[half:]):
                await self._submit(
                    Batch(batch.partition, part[0][0].offset, part[-1][0].offset, part)
                )
            return
        for record, _ in batch.commands:
            await self._dead_letter(record, f"EXSTREAM_{outcome.status}", outcome.detail)

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], code: str, reason: str
    ) -> None:
        letter = make_dead_letter(
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=list(record.headers or ()),
            error_type=code,
            reason=reason,
            failed_at=int(time.time() * 1000),
        )
        fut = await self.producer.send(
            names.dlq(record.topic),
            key=record.key,
            value=self._letter_codec.encode(letter),
            headers=dead_letter_headers(letter),
        )
        await fut
        self.metrics["dead_letters"] += 1
        log.warning(
            "dead-lettered %s/%d/%d: %s", record.topic, record.partition, record.offset, code
        )

    async def _commit(self) -> None:
        async with self._commit_lock:
            ready = self.tracker.committable()
            if not ready:
                return
            topic = self.settings.commands_topic
            await self.consumer.commit(
                {TopicPartition(topic, p): OffsetAndMetadata(o, "") for p, o in ready.items()}
            )
            self.metrics["commits"] += 1

    # ------------------------------------------------------------------ metrics

    def prometheus(self) -> str:
        lines = []
        for name, value in sorted(self.metrics.items()):
            metric = f"air_exstream_sink_{name}"
            lines += [f"# TYPE {metric} counter", f"{metric} {value}"]
        gauges = {
            "inflight_batches": len(self._inflight),
            "concurrency_limit": self.limit.limit,
            "circuit_open": int(self.breaker.state.value != "closed"),
            "circuit_opens": self.breaker.opens,
            "token_refreshes": self.client.token_refreshes,
        }
        for name, value in gauges.items():
            metric = f"air_exstream_sink_{name}"
            lines += [f"# TYPE {metric} gauge", f"{metric} {value}"]
        return "\n".join(lines) + "\n"


class _Drain(ConsumerRebalanceListener):  # type: ignore[misc]
    """On revocation: finish the batches in flight and commit before letting partitions go."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._sink.drain()
        self._sink.tracker.forget({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None
