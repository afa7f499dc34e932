"""Prometheus series of one worker (spec: metrics.md, "Prometheus"), fed by facts, records and pipeline events.

Counters and histograms come from facts as the aggregator applies them (streams/fact_series.py); rolling and live
gauges are made from the latest metric records (streams/record_series.py); pipeline-health series from the
worker's own bookkeeping. `forget_regions` drops a region's series the moment its partition leaves the worker.

Additions to the spec's list, needed by the rules and alerts:

- `ccpulse_contacts_first_line_total`: contacts ended resolved and not escalated (numerator of first-line rate).
- `ccpulse_region_last_event_timestamp_seconds{region}`: newest event time of a region ("region stopped sending").
- `ccpulse_stalled_partitions`: assigned partitions with messages waiting and none handled for 30 s (see
  streams/streaming/watchdog.py): regions of a partition nobody reads leave no series to alert on.

Limits that follow from Prometheus counters only going up:

- A withdrawn pairing of handle time is not taken out of `ccpulse_handle_seconds` (streams/fact_series.py).
- Event lag below zero (an event stamped slightly in the future, within the tolerance) is observed as 0, so the
  histogram's `_sum` never decreases.

`_created` series are turned off process-wide (they would double the series count, also for Faust's sensors).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

from streams.config import Settings
from streams.core.engine import ACCEPTED, DUPLICATE, REJECTED
from streams.core.events import REASONS
from streams.fact_series import FactSeries, HistogramCounts
from streams.record_series import RecordSeries
from streams.scrape_collector import ScrapeCollector

LAG_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 43200, 86400,
                 172800)


class _BatchHistogram:
    """An unlabelled histogram filled a batch at a time, served through prometheus_client's custom
    collector interface. `Histogram.observe` takes a lock and scans the buckets once per event: for
    the event lag that was 11 % of a worker's time reading a backlog (py-spy); here an event costs a
    `bisect`. Values below 0 are counted as 0, so the sum never decreases."""

    def __init__(self, name: str, documentation: str, bounds: Iterable[float]) -> None:
        self.name = name
        self.documentation = documentation
        self.series = HistogramCounts(tuple(float(bound) for bound in bounds))

    def observe_many(self, values: Iterable[float]) -> None:
        series = self.series
        counts, bounds = series.counts, series.bounds
        total = 0.0
        for value in values:
            if value < 0:
                value = 0.0
            counts[bisect_left(bounds, value)] += 1
            total += value
        series.sum += total

    def describe(self) -> list[HistogramMetricFamily]:
        return [HistogramMetricFamily(self.name, self.documentation)]

    def collect(self) -> list[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation)
        self.series.add_to(family, [])
        return [family]


def _last_event_times(last_ms: dict[str, int]) -> ScrapeCollector:
    """The newest event time of each region, from a plain dict: a `Gauge.set` (a lock) for each fact
    that moved it was a fifth of stage two's time."""
    def empty() -> GaugeMetricFamily:
        return GaugeMetricFamily("ccpulse_region_last_event_timestamp_seconds",
                                 "Largest event time seen of the region (addition to the spec).", labels=["region"])

    def fill(family: GaugeMetricFamily) -> None:
        # a copy: the page is rendered in a thread while the event loop adds regions
        for region, ts_ms in last_ms.copy().items():
            family.add_metric([region], ts_ms / 1000)

    return ScrapeCollector(empty, fill)


class Exposition:
    """The worker's `/metrics` content, in its own registry unless one is given."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        disable_created_metrics()
        self.settings = settings
        self.registry = CollectorRegistry() if registry is None else registry

        self.fact_series = FactSeries(settings, self.registry)
        #: count facts (stage two's observer, called with each message's facts)
        self.observe = self.fact_series.observe

        self.record_series = RecordSeries(self.registry)

        events = Counter("ccpulse_events_total", "Events read, by result.", ("result",), registry=self.registry)
        self._events = {result: events.labels(result) for result in (ACCEPTED, DUPLICATE, REJECTED)}
        rejected = Counter("ccpulse_events_rejected_total", "Events rejected, by reason.", ("reason",),
                           registry=self.registry)
        self._rejected = {reason: rejected.labels(reason) for reason in REASONS}
        self._lag = _BatchHistogram("ccpulse_event_lag_seconds",
                                    "Processing time minus event time of accepted events.", LAG_BUCKETS_S)
        self.registry.register(self._lag)
        self._watermark = Gauge("ccpulse_watermark_timestamp_seconds",
                                "Largest event time accepted so far (0 before the first event).",
                                registry=self.registry)
        self._stalled = Gauge("ccpulse_stalled_partitions",
                              "Assigned partitions with messages waiting and none handled for a while (addition "
                              "to the spec).", registry=self.registry)
        #: region -> its newest event time (ms)
        self._last_event_ms: dict[str, int] = {}
        self.registry.register(_last_event_times(self._last_event_ms))

    # -- pipeline health ---------------------------------------------------------------------

    def events_read(self, results: Mapping[str, int], reasons: Mapping[str, int], now_ms: int,
                    accepted_ts: Iterable[int]) -> None:
        """Count a batch of events read: how many had each result (accepted, duplicate, rejected) and
        each rejection reason, and the lag of each accepted event (its time against `now_ms`)."""
        for result, count in results.items():
            self._events[result].inc(count)
        for reason, count in reasons.items():
            self._rejected[reason].inc(count)
        self._lag.observe_many([(now_ms - ts) / 1000 for ts in accepted_ts])

    def set_watermark(self, ts_ms: int) -> None:
        self._watermark.set(ts_ms / 1000)

    def set_stalled_partitions(self, count: int) -> None:
        self._stalled.set(count)

    def region_event(self, region: str, ts_ms: int) -> None:
        """Raise the region's last-event time to `ts_ms` if it is newer."""
        last = self._last_event_ms
        if ts_ms > last.get(region, -1):
            last[region] = ts_ms

    # -- gauges from records -----------------------------------------------------------------

    def set_records(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Serve the gauges of the given records (other label sets are left as they are); null has no series."""
        self.record_series.set(records)

    # -- ownership ---------------------------------------------------------------------------

    def forget_regions(self, regions: Iterable[str]) -> None:
        """Drop every series of these regions now (their partition moved to another worker)."""
        gone = set(regions)
        for region in gone:
            self._last_event_ms.pop(region, None)
        self.record_series.forget(gone)
        self.fact_series.forget(gone)

    def exposition(self) -> bytes:
        """The text exposition of this registry (what `/metrics` serves)."""
        return generate_latest(self.registry)
