"""The Prometheus counters and histograms fed by facts, kept as plain numbers per (region, channel).

prometheus-client's `Counter.inc` and `Histogram.observe` take a lock per call, and the histogram
scans its buckets: a fact moved one to four of them for ~4.4 µs, more than a worker spends on the
fact's arithmetic. Here a fact adds to slots of a list, and the series are built when scraped,
through the client's custom-collector interface, one collector per metric so that `?name[]=`
renders only the series asked for. The text is what the client's `Counter` and `Histogram`
print: the same names, help, labels, order and bucket edges.

Every series of a (region, channel) pair, with every value of its extra label, exists from the
pair's first fact, at 0: a ratio rule then sees a 0 numerator instead of no series, and `rate()`
does not lose the first count. A `handle` fact with sign -1 (the tracker withdrawing an earlier
pairing) is ignored, since counters only go up: when a pairing is replaced, both handle times stay
in `ccpulse_handle_seconds` (the records' `handle_avg_s` is exact).
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_left
from collections.abc import Callable, Iterable
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from streams.config import Settings
from streams.core import facts as F
from streams.core.timefmt import DAY_MS
from streams.scrape_collector import ScrapeCollector

RC = ("region", "channel")

WAIT_LADDER_S = (1, 2, 5, 10, 15, 20, 30, 40, 60, 90, 120, 180, 300, 600, 900, 1800, 3600, 7200, 14400, 28800,
                 43200, 86400, 172800, 259200)
HANDLE_BUCKETS_S = (10, 20, 30, 60, 90, 120, 180, 300, 450, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800,
                    14400)

HANDLED_BY = ("bot", "agent", "none")
BOT_OUTCOMES = ("resolved", "handoff", "abandoned")
CSAT_SCORES = ("1", "2", "3", "4", "5")
NPS_CATEGORIES = ("promoter", "passive", "detractor")
TICKET_BANDS = ("24h", "72h", "later")


@dataclasses.dataclass(frozen=True)
class CounterFamily:
    """One counter metric; a pair has one series per value of its extra label (or one, unlabelled)."""

    name: str
    documentation: str
    label: str | None = None
    values: tuple[str, ...] = ("",)


COUNTERS: tuple[CounterFamily, ...] = (
    CounterFamily("ccpulse_contacts_total", "Contacts started."),
    CounterFamily("ccpulse_queue_offered_total", "Queue visits entered."),
    CounterFamily("ccpulse_queue_answered_total", "Queue visits answered."),
    CounterFamily("ccpulse_queue_answered_within_sla_total",
                  "Queue visits answered within the channel's SLA threshold."),
    CounterFamily("ccpulse_queue_abandoned_total",
                  "Queue visits abandoned; short=true below the short-abandon threshold.", "short", ("true", "false")),
    CounterFamily("ccpulse_contacts_ended_total", "Contacts ended, by handler.", "handled_by", HANDLED_BY),
    CounterFamily("ccpulse_contacts_resolved_total", "Contacts ended resolved."),
    CounterFamily("ccpulse_contacts_resolved_first_contact_total",
                  "Resolved contacts that were the customer's first contact on the issue."),
    CounterFamily("ccpulse_contacts_fcr_known_total", "Resolved contacts that carry first_contact."),
    CounterFamily("ccpulse_contacts_escalated_total", "Contacts ended escalated."),
    CounterFamily("ccpulse_contacts_first_line_total",
                  "Contacts ended resolved and not escalated (addition to the spec)."),
    CounterFamily("ccpulse_bot_sessions_total", "Bot sessions ended, by outcome.", "outcome", BOT_OUTCOMES),
    CounterFamily("ccpulse_csat_responses_total", "CSAT responses, by score 1-5.", "score", CSAT_SCORES),
    CounterFamily("ccpulse_nps_responses_total", "NPS responses, by category.", "category", NPS_CATEGORIES),
    CounterFamily("ccpulse_tickets_created_total", "Tickets created."),
    CounterFamily("ccpulse_tickets_resolved_total", "Tickets resolved, by exclusive band of time to resolution.",
                  "within", TICKET_BANDS),
)

#: (counter name, label value) -> its slot in a pair's counts
_SLOTS: dict[tuple[str, str], int] = {
    key: slot for slot, key in enumerate((family.name, value) for family in COUNTERS for value in family.values)
}


def _slot(name: str, value: str = "") -> int:
    return _SLOTS[(f"ccpulse_{name}_total", value)]


def nps_category(score: int) -> str:
    return "promoter" if score >= 9 else "detractor" if score <= 6 else "passive"


def ticket_band(resolution_ms: int) -> str:
    """Exclusive bands: within 24 h, within 72 h (but not 24 h), later."""
    return "24h" if resolution_ms <= DAY_MS else "72h" if resolution_ms <= 3 * DAY_MS else "later"


CONTACTS, OFFERED, ANSWERED, WITHIN_SLA = map(_slot, ("contacts", "queue_offered", "queue_answered",
                                                      "queue_answered_within_sla"))
ABANDONED = {short: _slot("queue_abandoned", str(short).lower()) for short in (True, False)}
ENDED = {handler: _slot("contacts_ended", handler) for handler in HANDLED_BY}
RESOLVED, RESOLVED_FIRST, FCR_KNOWN, ESCALATED, FIRST_LINE = (
    _slot(f"contacts_{name}") for name in ("resolved", "resolved_first_contact", "fcr_known", "escalated",
                                           "first_line"))
BOT = {outcome: _slot("bot_sessions", outcome) for outcome in BOT_OUTCOMES}
CSAT = {int(score): _slot("csat_responses", score) for score in CSAT_SCORES}
NPS = {score: _slot("nps_responses", nps_category(score)) for score in range(11)}
TICKETS_CREATED = _slot("tickets_created")
TICKETS_RESOLVED = {band: _slot("tickets_resolved", band) for band in TICKET_BANDS}


def wait_buckets(settings: Settings) -> tuple[float, ...]:
    """The wait ladder merged with every channel's SLA threshold, so `le="<threshold>"` counts are exact."""
    thresholds = (float(c.sla_threshold_s) for c in settings.channels.values())
    return tuple(sorted({float(edge) for edge in WAIT_LADDER_S} | set(thresholds)))


class HistogramCounts:
    """The buckets and sum of one histogram series: counts[i] holds values in (bounds[i-1], bounds[i]],
    the last slot values above every bound (as `Histogram.observe` puts a value in its first bucket
    whose edge is >= it)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def add_to(self, family: HistogramMetricFamily, labels: list[str]) -> None:
        edges = [*map(floatToGoString, self.bounds), "+Inf"]
        family.add_metric(labels, list(zip(edges, accumulate(self.counts), strict=True)), sum_value=self.sum)


class PairCounts:
    """Everything counted for one (region, channel)."""

    __slots__ = ("counts", "handle", "short_us", "sla_us", "wait")

    def __init__(self, sla_us: int, short_us: int, wait_bounds: tuple[float, ...],
                 handle_bounds: tuple[float, ...]) -> None:
        self.sla_us = sla_us
        self.short_us = short_us
        self.counts = [0] * len(_SLOTS)
        self.wait = HistogramCounts(wait_bounds)
        self.handle = HistogramCounts(handle_bounds)


def _each_pair(pairs: dict[tuple[str, str], PairCounts]) -> list[tuple[list[str], PairCounts]]:
    """(region and channel labels, counts) of every pair; a copy, since the page is rendered in a
    thread while the event loop adds pairs (dict.copy holds the GIL)."""
    return [([region, channel], pair) for (region, channel), pair in pairs.copy().items()]


def _counter_collector(pairs: dict[tuple[str, str], PairCounts], counter: CounterFamily) -> ScrapeCollector:
    labels = [*RC, counter.label] if counter.label else list(RC)
    slots = [(value, _SLOTS[(counter.name, value)]) for value in counter.values]

    def empty() -> CounterMetricFamily:
        return CounterMetricFamily(counter.name, counter.documentation, labels=labels)

    def fill(family: Any) -> None:
        for pair_labels, pair in _each_pair(pairs):
            counts = pair.counts
            for value, slot in slots:
                family.add_metric([*pair_labels, value] if counter.label else pair_labels, counts[slot])

    return ScrapeCollector(empty, fill)


def _histogram_collector(pairs: dict[tuple[str, str], PairCounts], name: str, documentation: str,
                         series: Callable[[PairCounts], HistogramCounts]) -> ScrapeCollector:
    def empty() -> HistogramMetricFamily:
        return HistogramMetricFamily(name, documentation, labels=list(RC))

    def fill(family: Any) -> None:
        for pair_labels, pair in _each_pair(pairs):
            series(pair).add_to(family, pair_labels)

    return ScrapeCollector(empty, fill)


class FactSeries:
    """The fact-fed series of one registry."""

    def __init__(self, settings: Settings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.pairs: dict[tuple[str, str], PairCounts] = {}
        self.short_us = round(settings.pipeline.short_abandon_s * 1_000_000)
        self.wait_bounds = wait_buckets(settings)
        self.handle_bounds = tuple(float(edge) for edge in HANDLE_BUCKETS_S)
        for counter in COUNTERS:
            registry.register(_counter_collector(self.pairs, counter))
        registry.register(_histogram_collector(self.pairs, "ccpulse_wait_seconds", "Wait of answered queue visits.",
                                               lambda pair: pair.wait))
        registry.register(_histogram_collector(self.pairs, "ccpulse_handle_seconds",
                                               "Handle time of agent-handled contacts.", lambda pair: pair.handle))
        self._observe: dict[str, Callable[[PairCounts, F.Fact], None]] = {
            F.CONTACT: _contact, F.OFFERED: _offered, F.VISIT: _visit, F.ENDED: _ended, F.HANDLE: _handle,
            F.BOT: _bot, F.SURVEY: _survey, F.TICKET_CREATED: _ticket_created, F.TICKET_RESOLVED: _ticket_resolved,
        }

    def observe(self, facts: Iterable[F.Fact]) -> None:
        """Count facts (stage two passes each message's facts at once: one call, not one per fact)."""
        pairs, observers = self.pairs, self._observe
        for fact in facts:
            pair = pairs.get((fact[1], fact[2])) or self._new_pair(fact[1], fact[2])
            observers[fact[0]](pair, fact)

    def _new_pair(self, region: str, channel: str) -> PairCounts:
        sla_us = round(self.settings.channels[channel].sla_threshold_s * 1_000_000)
        pair = self.pairs[(region, channel)] = PairCounts(sla_us, self.short_us, self.wait_bounds,
                                                          self.handle_bounds)
        return pair

    def forget(self, regions: Iterable[str]) -> None:
        """Drop every series of these regions."""
        gone = set(regions)
        for key in [key for key in self.pairs if key[0] in gone]:
            del self.pairs[key]


def _contact(pair: PairCounts, fact: F.Fact) -> None:
    pair.counts[CONTACTS] += 1


def _offered(pair: PairCounts, fact: F.Fact) -> None:
    pair.counts[OFFERED] += 1


def _visit(pair: PairCounts, fact: F.Fact) -> None:
    reason, wait_us = fact[5], fact[6]
    if reason == "answered":
        counts = pair.counts
        counts[ANSWERED] += 1
        if wait_us <= pair.sla_us:
            counts[WITHIN_SLA] += 1
        pair.wait.observe(wait_us / 1_000_000)
    elif reason == "abandoned":
        pair.counts[ABANDONED[wait_us < pair.short_us]] += 1


def _ended(pair: PairCounts, fact: F.Fact) -> None:
    _, _, _, _, resolved, handled_by, escalated, first_contact = fact
    counts = pair.counts
    counts[ENDED[handled_by]] += 1
    if escalated:
        counts[ESCALATED] += 1
    if resolved:
        counts[RESOLVED] += 1
        if not escalated:
            counts[FIRST_LINE] += 1
        if first_contact is not None:
            counts[FCR_KNOWN] += 1
            if first_contact:
                counts[RESOLVED_FIRST] += 1


def _handle(pair: PairCounts, fact: F.Fact) -> None:
    if fact[5] > 0:
        pair.handle.observe(fact[4] / 1_000_000)


def _bot(pair: PairCounts, fact: F.Fact) -> None:
    pair.counts[BOT[fact[4]]] += 1


def _survey(pair: PairCounts, fact: F.Fact) -> None:
    csat, nps = fact[4], fact[5]
    if csat is not None:
        pair.counts[CSAT[csat]] += 1
    if nps is not None:
        pair.counts[NPS[nps]] += 1


def _ticket_created(pair: PairCounts, fact: F.Fact) -> None:
    pair.counts[TICKETS_CREATED] += 1


def _ticket_resolved(pair: PairCounts, fact: F.Fact) -> None:
    pair.counts[TICKETS_RESOLVED[ticket_band(fact[5])]] += 1
