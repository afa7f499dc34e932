"""Faust's own sensor metrics on the worker's /metrics, in base units, at a lower cost per event.

faust-streaming's Prometheus sensor names one histogram `<prefix>_events_runtime_ms` and fills
it in milliseconds, which breaks Prometheus' base-unit convention (`promtool check metrics`
flags it). Here it becomes `ccpulse_events_runtime_seconds`, observed in seconds; every other
sensor metric is Faust's as it is.

The sensor resolves labelled children and normalises the stream's name several times per event
and message; prometheus_client's `labels()` takes a lock and builds tuples each time (together
~6 % of a busy worker's samples under py-spy). Children and stream names are cached here.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from aiohttp.web import Response
from faust.sensors.monitor import Monitor
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest

RUNTIME_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _CachedLabels:
    """A labelled metric whose children are kept in a dict; anything else goes to the metric itself."""

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._children: dict[tuple[Any, ...], Any] = {}

    def labels(self, *values: Any, **named: Any) -> Any:
        key = (*values, *named.items())
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._metric.labels(*values, **named)
        return child

    def remove(self, *values: Any) -> None:
        self._children.clear()  # only on a rebalance: cheaper than matching keys
        self._metric.remove(*values)

    def clear(self) -> None:
        self._children.clear()
        self._metric.clear()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._metric, name)


class _SecondsMonitor(PrometheusMonitor):
    def __init__(self, metrics: FaustMetrics, **kwargs: Any) -> None:
        super().__init__(metrics, **kwargs)
        self._stream_labels: dict[Any, str] = {}

    def _stream_label(self, stream: Any) -> str:
        label = self._stream_labels.get(stream)
        if label is None:
            label = self._stream_labels[stream] = super()._stream_label(stream)
        return label

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: dict | None = None) -> None:
        Monitor.on_stream_event_out(self, tp, offset, stream, event, state)
        self._metrics.total_active_events.dec()
        if state is not None:
            self._metrics.events_runtime_latency.observe(self.events_runtime[-1])


def install_metrics_page(app: faust.App, registry: CollectorRegistry, prefix: str = "ccpulse") -> None:
    """Attach Faust's sensors to `registry` and serve the registry on the app's `/metrics`."""
    metrics = FaustMetrics.create(registry, prefix)
    registry.unregister(metrics.events_runtime_latency)
    runtime = Histogram(f"{prefix}_events_runtime_seconds", "Time the agents spent on one event",
                        registry=registry, buckets=RUNTIME_BUCKETS)
    metrics = metrics._replace(events_runtime_latency=runtime)
    app.monitor = _SecondsMonitor(metrics=metrics._make(
        _CachedLabels(metric) if metric._labelnames else metric for metric in metrics))

    @app.page("/metrics")
    async def metrics_page(self: Any, request: Any) -> Any:
        """The whole registry, or with `?name[]=<series>` (repeatable) only those series, as
        prometheus_client's own handler does: a probe of one series need not pay for rendering
        all of them (tens of thousands of lines once every region has series).

        Rendered in a thread (prometheus_client is thread-safe): the whole page takes about a
        second, which on the event loop held every stage and the publisher still for that long at
        each scrape. The thread shares the GIL, so the loop runs slower meanwhile instead of stopping.
        (With a whole page every second, the thread was worse: the render then took a third of the
        worker's time either way, and the loop lost more of the GIL to it.)"""
        names = request.query.getall("name[]", [])
        source = registry.restricted_registry(names) if names else registry
        body = await asyncio.to_thread(generate_latest, source)
        return Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
