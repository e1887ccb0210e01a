"""Sending delivery and engagement events in batches (a JSON array per POST).

Exstream sends Experience Insights events from a cron job (every 10 minutes by default); how they
reach a system other than Experience Insights is not public, so this is the emulator's own
delivery: events are grouped per worker (chosen by our communication id, so one communication's
events leave in order unless a reorder is injected) into batches of at most ``batch_size``,
waiting at most ``linger_s`` for a batch to fill, and posted to the events URL. The sender
authenticates as configured: ``hmac`` signs the body (``X-Exstream-Signature``,
:mod:`streams.signing`), ``bearer`` sends the shared secret as a bearer token. A batch is retried
with exponential backoff and jitter until a 2xx (``max_attempts``), then counted as abandoned.
Injected faults: a share of events sent twice (in a later batch), a share of customers with two
adjacent events swapped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

import aiohttp
import orjson

from streams.emulator.faults import FaultInjector
from streams.signing import SIGNATURE_HEADER, sign

log = logging.getLogger(__name__)


class EventDispatcher:
    def __init__(
        self,
        *,
        url: str | None,
        secret: bytes,
        auth: str,
        batch_size: int,
        linger_s: float,
        max_attempts: int,
        workers: int,
        faults: FaultInjector,
        stats: Counter[str],
    ) -> None:
        if auth not in ("hmac", "bearer"):
            raise ValueError("events auth must be 'hmac' or 'bearer'")
        self.url = url
        self.secret = secret
        self.auth = auth
        self.batch_size = max(1, batch_size)
        self.linger_s = linger_s
        self.max_attempts = max_attempts
        self.faults = faults
        self.stats = stats
        self._queues: list[asyncio.Queue[dict[str, Any]]] = [
            asyncio.Queue() for _ in range(max(1, workers))
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._tasks = [asyncio.ensure_future(self._worker(q)) for q in self._queues]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def queued(self) -> int:
        return sum(q.qsize() for q in self._queues)

    async def drain(self) -> None:
        for queue in self._queues:
            await queue.join()

    def enqueue(self, events: list[dict[str, Any]]) -> None:
        """Queue events (in order per communication), with the injected duplicates and swaps."""
        by_communication: dict[str, list[dict[str, Any]]] = {}
        for e in events:
            by_communication.setdefault(e["user"]["AirCommunicationId"], []).append(e)
        for communication, ordered in by_communication.items():
            if len(ordered) > 2 and self.faults.swap_next():
                i = self.faults.rng.randrange(1, len(ordered) - 1)
                ordered[i], ordered[i + 1] = ordered[i + 1], ordered[i]
                self.stats["events_reordered"] += 1
            queue = self._queues[hash(communication) % len(self._queues)]
            for e in ordered:
                for _ in range(self.faults.callback_copies()):
                    queue.put_nowait(e)
                self.stats["events_enqueued"] += 1

    async def _worker(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            batch = [await queue.get()]
            deadline = time.monotonic() + self.linger_s
            while len(batch) < self.batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            try:
                await self._deliver(batch)
            finally:
                for _ in batch:
                    queue.task_done()

    def _headers(self, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.auth == "hmac":
            headers[SIGNATURE_HEADER] = sign(self.secret, body, int(time.time()))
        else:
            headers["Authorization"] = f"Bearer {self.secret.decode()}"
        return headers

    async def _deliver(self, batch: list[dict[str, Any]]) -> None:
        if self.url is None or self._session is None:
            self.stats["events_unsubscribed"] += len(batch)
            return
        body = orjson.dumps(batch)
        backoff = 0.05
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with self._session.post(
                    self.url, data=body, headers=self._headers(body)
                ) as response:
                    if 200 <= response.status < 300:
                        self.stats["event_batches_delivered"] += 1
                        self.stats["events_delivered"] += len(batch)
                        return
                    self.stats[f"event_batch_status_{response.status}"] += 1
            except (TimeoutError, aiohttp.ClientError):
                self.stats["event_batch_errors"] += 1
            if attempt < self.max_attempts:
                await asyncio.sleep(backoff * (0.5 + self.faults.rng.random()))
                backoff = min(backoff * 2, 5.0)
        self.stats["event_batches_abandoned"] += 1
        self.stats["events_abandoned"] += len(batch)
        log.warning(
            "a batch of %d events abandoned after %d attempts", len(batch), self.max_attempts
        )
