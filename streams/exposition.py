"""Prometheus series of one worker (spec: metrics.md, "Prometheus"), fed by facts, records and pipeline events.

Counters and histograms come from facts as the aggregator applies them; rolling and live gauges are copied from
the metric records; pipeline-health series from the worker's own bookkeeping. Every labelled child is cached and
indexed by region, so `observe` does no label resolution after a pair's first fact, and `forget_regions` can drop a
region's series the moment its partition leaves the worker.

Additions to the spec's list, needed by the rules and alerts:

- `ccpulse_contacts_first_line_total`: contacts ended resolved and not escalated (numerator of first-line rate).
- `ccpulse_region_last_event_timestamp_seconds{region}`: newest event time of a region ("region stopped sending").
- `ccpulse_stalled_partitions`: assigned partitions with messages waiting and none handled for 30 s (see
  streams/streaming/watchdog.py): regions of a partition nobody reads leave no series to alert on.

Limits that follow from Prometheus counters only going up:

- A `handle` fact with sign -1 (the tracker withdrawing an earlier pairing of handle time) is ignored, so when a
  pairing is replaced both the withdrawn and the new handle time stay in `ccpulse_handle_seconds`. The records'
  `handle_avg_s` is exact; the histogram can over-count in that rare case.
- Event lag below zero (an event stamped slightly in the future, within the tolerance) is observed as 0, so the
  histogram's `_sum` never decreases.

All counters of a (region, channel) pair, with every value of their extra label, are created at 0 on the pair's
first fact: a ratio rule then sees a 0 numerator instead of no series, and `rate()` does not lose the first count.
`_created` series are turned off process-wide (they would double the series count, also for Faust's sensors).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from streams.config import Settings
from streams.core import facts as F
from streams.core.aggregator import DAY_MS
from streams.core.engine import ACCEPTED, DUPLICATE, REJECTED
from streams.core.events import REASONS

RC = ("region", "channel")
LIVE_WINDOW = "15m"

WAIT_LADDER_S = (1, 2, 5, 10, 15, 20, 30, 40, 60, 90, 120, 180, 300, 600, 900, 1800, 3600, 7200, 14400, 28800,
                 43200, 86400, 172800, 259200)
HANDLE_BUCKETS_S = (10, 20, 30, 60, 90, 120, 180, 300, 450, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800,
                    14400)
LAG_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 43200, 86400,
                 172800)

HANDLED_BY = ("bot", "agent", "none")
BOT_OUTCOMES = ("resolved", "handoff", "abandoned")
CSAT_SCORES = (1, 2, 3, 4, 5)
NPS_CATEGORIES = ("promoter", "passive", "detractor")
TICKET_BANDS = ("24h", "72h", "later")

#: rolling gauge name -> record field
ROLLING_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("ccpulse_service_level_ratio", "service_level", "Answered within the SLA threshold over handled visits."),
    ("ccpulse_abandon_ratio", "abandon_rate", "Abandoned (not short) over handled visits."),
    ("ccpulse_wait_avg_seconds", "wait_avg_s", "Mean wait of answered visits."),
    ("ccpulse_wait_p90_seconds", "wait_p90_s", "90th percentile wait of answered visits."),
    ("ccpulse_fcr_ratio", "fcr_rate", "Resolved at first contact over resolved contacts with first_contact known."),
    ("ccpulse_first_line_ratio", "first_line_rate", "Contacts resolved without escalation over ended contacts."),
    ("ccpulse_bot_share_ratio", "bot_share", "Contacts handled by a bot over those handled by bot or agent."),
    ("ccpulse_bot_containment_ratio", "bot_containment", "Bot sessions resolved by the bot over bot sessions."),
    ("ccpulse_csat_top_box_ratio", "csat_top_box", "CSAT responses scoring 5 over CSAT responses."),
    ("ccpulse_nps_score", "nps", "Net promoter score, -100 to 100."),
)


def wait_buckets(settings: Settings) -> tuple[float, ...]:
    """The wait ladder merged with every channel's SLA threshold, so `le="<threshold>"` counts are exact."""
    thresholds = (float(c.sla_threshold_s) for c in settings.channels.values())
    return tuple(sorted({float(edge) for edge in WAIT_LADDER_S} | set(thresholds)))


def nps_category(score: int) -> str:
    return "promoter" if score >= 9 else "detractor" if score <= 6 else "passive"


def ticket_band(resolution_ms: int) -> str:
    """Exclusive bands: within 24 h, within 72 h (but not 24 h), later."""
    return "24h" if resolution_ms <= DAY_MS else "72h" if resolution_ms <= 3 * DAY_MS else "later"


class _RegionIndex:
    """Children of labelled metrics, cached and grouped by region (the first label) for removal at once."""

    def __init__(self) -> None:
        self._by_region: dict[str, dict[tuple[Any, tuple[str, ...]], Any]] = {}

    def child(self, metric: Any, labels: tuple[str, ...]) -> Any:
        index = self._by_region.get(labels[0])
        if index is None:
            index = self._by_region[labels[0]] = {}
        key = (metric, labels)
        child = index.get(key)
        if child is None:
            child = index[key] = metric.labels(*labels)
        return child

    def remove(self, metric: Any, labels: tuple[str, ...]) -> None:
        index = self._by_region.get(labels[0])
        if index is not None and index.pop((metric, labels), None) is not None:
            metric.remove(*labels)

    def forget(self, region: str) -> None:
        for metric, labels in self._by_region.pop(region, {}):
            metric.remove(*labels)


class _BatchHistogram:
    """An unlabelled histogram filled a batch at a time, served through prometheus_client's custom
    collector interface. `Histogram.observe` takes a lock and scans the buckets once per event: for
    the event lag that was 11 % of a worker's time reading a backlog (py-spy); here an event costs a
    `bisect`. Values below 0 are counted as 0, so the sum never decreases."""

    def __init__(self, name: str, documentation: str, bounds: Iterable[float]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = tuple(float(bound) for bound in bounds)
        #: counts[i]: values in (bounds[i-1], bounds[i]]; the last, values above every bound
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe_many(self, values: Iterable[float]) -> None:
        counts, bounds = self.counts, self.bounds
        total = 0.0
        for value in values:
            if value < 0:
                value = 0.0
            counts[bisect_left(bounds, value)] += 1
            total += value
        self.sum += total

    def describe(self) -> list[HistogramMetricFamily]:
        return [HistogramMetricFamily(self.name, self.documentation)]

    def collect(self) -> list[HistogramMetricFamily]:
        counts, total = list(self.counts), self.sum
        family = HistogramMetricFamily(self.name, self.documentation)
        edges = [*map(floatToGoString, self.bounds), "+Inf"]
        family.add_metric([], list(zip(edges, accumulate(counts), strict=True)), sum_value=total)
        return [family]


class _Pair:
    """The counter and histogram children of one (region, channel), created together at 0."""

    __slots__ = ("abandoned", "answered", "bot", "contacts", "csat", "ended", "escalated", "fcr_known",
                 "first_line", "handle", "nps", "offered", "resolved", "resolved_first", "short_us", "sla_us",
                 "tickets_created", "tickets_resolved", "wait", "within_sla")

    def __init__(self, expo: Exposition, region: str, channel: str) -> None:
        index = expo._index

        def one(metric: Any) -> Any:
            return index.child(metric, (region, channel))

        def each(metric: Any, values: Iterable[Any]) -> dict[Any, Any]:
            return {value: index.child(metric, (region, channel, str(value))) for value in values}

        self.sla_us = round(expo.settings.channels[channel].sla_threshold_s * 1_000_000)
        self.short_us = round(expo.settings.pipeline.short_abandon_s * 1_000_000)
        self.contacts = one(expo.contacts)
        self.offered = one(expo.offered)
        self.answered = one(expo.answered)
        self.within_sla = one(expo.within_sla)
        self.abandoned = {short: index.child(expo.abandoned, (region, channel, str(short).lower()))
                          for short in (True, False)}
        self.ended = each(expo.ended, HANDLED_BY)
        self.resolved = one(expo.resolved)
        self.resolved_first = one(expo.resolved_first)
        self.fcr_known = one(expo.fcr_known)
        self.escalated = one(expo.escalated)
        self.first_line = one(expo.first_line)
        self.bot = each(expo.bot_sessions, BOT_OUTCOMES)
        self.csat = each(expo.csat, CSAT_SCORES)
        self.nps = each(expo.nps, NPS_CATEGORIES)
        self.tickets_created = one(expo.tickets_created)
        self.tickets_resolved = each(expo.tickets_resolved, TICKET_BANDS)
        self.wait = one(expo.wait)
        self.handle = one(expo.handle)


class Exposition:
    """The worker's `/metrics` content, in its own registry unless one is given."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        disable_created_metrics()
        self.settings = settings
        self.registry = CollectorRegistry() if registry is None else registry
        self._index = _RegionIndex()
        self._pairs: dict[tuple[str, str], _Pair] = {}
        self._last_event_ms: dict[str, int] = {}

        def counter(name: str, doc: str, *extra: str) -> Counter:
            return Counter(name, doc, (*RC, *extra), registry=self.registry)

        self.contacts = counter("ccpulse_contacts_total", "Contacts started.")
        self.offered = counter("ccpulse_queue_offered_total", "Queue visits entered.")
        self.answered = counter("ccpulse_queue_answered_total", "Queue visits answered.")
        self.within_sla = counter("ccpulse_queue_answered_within_sla_total",
                                  "Queue visits answered within the channel's SLA threshold.")
        self.abandoned = counter("ccpulse_queue_abandoned_total",
                                 "Queue visits abandoned; short=true below the short-abandon threshold.", "short")
        self.ended = counter("ccpulse_contacts_ended_total", "Contacts ended, by handler.", "handled_by")
        self.resolved = counter("ccpulse_contacts_resolved_total", "Contacts ended resolved.")
        self.resolved_first = counter("ccpulse_contacts_resolved_first_contact_total",
                                      "Resolved contacts that were the customer's first contact on the issue.")
        self.fcr_known = counter("ccpulse_contacts_fcr_known_total", "Resolved contacts that carry first_contact.")
        self.escalated = counter("ccpulse_contacts_escalated_total", "Contacts ended escalated.")
        self.first_line = counter("ccpulse_contacts_first_line_total",
                                  "Contacts ended resolved and not escalated (addition to the spec).")
        self.bot_sessions = counter("ccpulse_bot_sessions_total", "Bot sessions ended, by outcome.", "outcome")
        self.csat = counter("ccpulse_csat_responses_total", "CSAT responses, by score 1-5.", "score")
        self.nps = counter("ccpulse_nps_responses_total", "NPS responses, by category.", "category")
        self.tickets_created = counter("ccpulse_tickets_created_total", "Tickets created.")
        self.tickets_resolved = counter("ccpulse_tickets_resolved_total",
                                        "Tickets resolved, by exclusive band of time to resolution.", "within")
        self.wait = Histogram("ccpulse_wait_seconds", "Wait of answered queue visits.", RC,
                              buckets=wait_buckets(settings), registry=self.registry)
        self.handle = Histogram("ccpulse_handle_seconds", "Handle time of agent-handled contacts.", RC,
                                buckets=HANDLE_BUCKETS_S, registry=self.registry)

        self._rolling = [(Gauge(name, doc, (*RC, "window"), registry=self.registry), field)
                         for name, field, doc in ROLLING_GAUGES]
        self.waiting = Gauge("ccpulse_waiting_contacts", "Queue visits entered and not left.", RC,
                             registry=self.registry)
        self.oldest_waiting = Gauge("ccpulse_oldest_waiting_seconds", "Wait so far of the oldest waiting visit.", RC,
                                    registry=self.registry)
        self.tickets_open = Gauge("ccpulse_tickets_open", "Open tickets; over_72h=true past the 72 h promise.",
                                  (*RC, "over_72h"), registry=self.registry)

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
        self.last_event = Gauge("ccpulse_region_last_event_timestamp_seconds",
                                "Largest event time seen of the region (addition to the spec).", ("region",),
                                registry=self.registry)

        self._observe = {
            F.CONTACT: self._contact, F.OFFERED: self._offered, F.VISIT: self._visit, F.ENDED: self._ended,
            F.HANDLE: self._handle, F.BOT: self._bot, F.SURVEY: self._survey,
            F.TICKET_CREATED: self._ticket_created, F.TICKET_RESOLVED: self._ticket_resolved,
        }

    # -- facts -------------------------------------------------------------------------------

    def observe(self, fact: F.Fact) -> None:
        """Count one fact (the aggregator's observer)."""
        key = (fact[1], fact[2])
        pair = self._pairs.get(key)
        if pair is None:
            pair = self._pairs[key] = _Pair(self, fact[1], fact[2])
        self._observe[fact[0]](pair, fact)

    @staticmethod
    def _contact(pair: _Pair, fact: F.Fact) -> None:
        pair.contacts.inc()

    @staticmethod
    def _offered(pair: _Pair, fact: F.Fact) -> None:
        pair.offered.inc()

    @staticmethod
    def _visit(pair: _Pair, fact: F.Fact) -> None:
        reason, wait_us = fact[5], fact[6]
        if reason == "answered":
            pair.answered.inc()
            if wait_us <= pair.sla_us:
                pair.within_sla.inc()
            pair.wait.observe(wait_us / 1_000_000)
        elif reason == "abandoned":
            pair.abandoned[wait_us < pair.short_us].inc()

    @staticmethod
    def _ended(pair: _Pair, fact: F.Fact) -> None:
        _, _, _, _, resolved, handled_by, escalated, first_contact = fact
        pair.ended[handled_by].inc()
        if escalated:
            pair.escalated.inc()
        if resolved:
            pair.resolved.inc()
            if not escalated:
                pair.first_line.inc()
            if first_contact is not None:
                pair.fcr_known.inc()
                if first_contact:
                    pair.resolved_first.inc()

    @staticmethod
    def _handle(pair: _Pair, fact: F.Fact) -> None:
        if fact[5] > 0:
            pair.handle.observe(fact[4] / 1_000_000)

    @staticmethod
    def _bot(pair: _Pair, fact: F.Fact) -> None:
        pair.bot[fact[4]].inc()

    @staticmethod
    def _survey(pair: _Pair, fact: F.Fact) -> None:
        csat, nps = fact[4], fact[5]
        if csat is not None:
            pair.csat[csat].inc()
        if nps is not None:
            pair.nps[nps_category(nps)].inc()

    @staticmethod
    def _ticket_created(pair: _Pair, fact: F.Fact) -> None:
        pair.tickets_created.inc()

    @staticmethod
    def _ticket_resolved(pair: _Pair, fact: F.Fact) -> None:
        pair.tickets_resolved[ticket_band(fact[5])].inc()

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
        if ts_ms > self._last_event_ms.get(region, -1):
            self._last_event_ms[region] = ts_ms
            self._index.child(self.last_event, (region,)).set(ts_ms / 1000)

    # -- gauges from records -----------------------------------------------------------------

    def set_records(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Update the gauges of the given records (other label sets are left as they are); null removes."""
        index = self._index
        for record in records:
            labels = (record["region"], record["channel"], record["window"])
            for gauge, field in self._rolling:
                value = record[field]
                if value is None:
                    index.remove(gauge, labels)
                else:
                    index.child(gauge, labels).set(value)
            if record["window"] == LIVE_WINDOW:
                self._set_live(labels[:2], record)

    def _set_live(self, labels: tuple[str, str], record: Mapping[str, Any]) -> None:
        index = self._index
        index.child(self.waiting, labels).set(record["waiting_now"])
        oldest = record["oldest_waiting_s"]
        if oldest is None:
            index.remove(self.oldest_waiting, labels)
        else:
            index.child(self.oldest_waiting, labels).set(oldest)
        over_72h = record["tickets_open_over_72h"]
        index.child(self.tickets_open, (*labels, "false")).set(record["tickets_open"] - over_72h)
        index.child(self.tickets_open, (*labels, "true")).set(over_72h)

    # -- ownership ---------------------------------------------------------------------------

    def forget_regions(self, regions: Iterable[str]) -> None:
        """Drop every series of these regions now (their partition moved to another worker)."""
        gone = set(regions)
        for region in gone:
            self._index.forget(region)
            self._last_event_ms.pop(region, None)
        for key in [key for key in self._pairs if key[0] in gone]:
            del self._pairs[key]

    def exposition(self) -> bytes:
        """The text exposition of this registry (what `/metrics` serves)."""
        return generate_latest(self.registry)
