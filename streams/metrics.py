"""Prometheus metrics of every long-running process, through ``prometheus_client``.

Each service's metrics object owns a :class:`~prometheus_client.CollectorRegistry` (one per
service instance, hence one per process in production; several services in one test process
do not collide). Two ways to expose it:

- :func:`add_metrics_route`: ``GET /metrics`` on an aiohttp application the service already
  runs (webhook receiver, on-demand service);
- :func:`serve_metrics`: a standalone port (``prometheus_client.start_http_server``, its own
  thread, so a scrape is answered even while the event loop is busy) for processes without an
  HTTP server (routing worker, sink).

``*_created`` series are turned off process-wide: counters restart at 0 with the process, which
``rate()`` handles, and the extra series only doubled every page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from threading import Thread
from wsgiref.simple_server import WSGIServer

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The text format every Prometheus (2.x and 3.x) reads; what ``generate_latest`` writes."""

__all__ = [
    "CONTENT_TYPE",
    "CallbackCounter",
    "LabelledCounts",
    "MetricsServer",
    "add_metrics_route",
    "metric_names",
    "new_registry",
    "parse_samples",
    "render",
    "serve_metrics",
]


def new_registry() -> CollectorRegistry:
    return CollectorRegistry(auto_describe=True)


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format."""
    return generate_latest(registry)


def add_metrics_route(
    app: web.Application, registry: CollectorRegistry, path: str = "/metrics"
) -> None:
    """Serve ``registry`` at ``GET path`` of an aiohttp application."""

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=render(registry), headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get(path, metrics)


@dataclass
class MetricsServer:
    """A running standalone metrics port (see :func:`serve_metrics`)."""

    server: WSGIServer
    thread: Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_metrics(registry: CollectorRegistry, port: int, host: str = "127.0.0.1") -> MetricsServer:
    """Serve ``registry`` on ``http://host:port/`` (any path) from a daemon thread.

    ``port=0`` picks a free port (read it from :attr:`MetricsServer.port`). Raises ``OSError``
    when the port is taken."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, thread)


class CallbackCounter(Collector):
    """A counter whose value another object keeps (read at each scrape), e.g. the evictions of
    a cache or the token refreshes of a client."""

    def __init__(
        self, name: str, documentation: str, read: Callable[[], float], registry: CollectorRegistry
    ) -> None:
        self._name = name.removesuffix("_total")
        self._doc = documentation
        self._read = read
        registry.register(self)

    def describe(self) -> Iterable[Metric]:
        return [CounterMetricFamily(self._name, self._doc)]

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self._name, self._doc, value=self._read())


class LabelledCounts(Collector):
    """A labelled counter for per-record paths: a plain dict of counts read at each scrape, where
    a ``prometheus_client`` child takes a lock per increment (~1 us; several per record in the
    routing worker). Increments come from one thread (the event loop); a scrape from another
    thread reads a copy taken in one step."""

    def __init__(
        self, name: str, documentation: str, labels: list[str], registry: CollectorRegistry
    ) -> None:
        self._name = name.removesuffix("_total")
        self._doc = documentation
        self._labels = labels
        self.counts: dict[tuple[str, ...], float] = {}
        registry.register(self)

    def inc(self, labels: tuple[str, ...], amount: float = 1) -> None:
        counts = self.counts
        counts[labels] = counts.get(labels, 0) + amount

    def describe(self) -> Iterable[Metric]:
        return [CounterMetricFamily(self._name, self._doc, labels=self._labels)]

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._doc, labels=self._labels)
        for labels, value in list(self.counts.items()):
            family.add_metric(list(labels), value)
        yield family


def parse_samples(text: str) -> dict[str, float]:
    """Every sample of a Prometheus text page: ``name`` or ``name{a="x",b="y"}`` (labels sorted
    by name) -> value."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "gauge": ("",),
    "info": ("_info",),
}


def metric_names(registry: CollectorRegistry) -> set[str]:
    """Every series name ``registry`` exports (``_total``, ``_bucket``, ``_sum``... included),
    labelled metrics that have no sample yet too."""
    return {
        family.name + suffix
        for family in registry.collect()
        for suffix in SUFFIXES.get(family.type, ("",))
    }
