"""The Prometheus gauges copied from metric records, built from the latest records when scraped.

Setting prometheus-client gauges took ~11 µs a record (a labelled child looked up under a lock and
set, for ten rolling gauges and four live ones), about a quarter of a busy worker's publishing
round (py-spy). Here a publishing round only files each changed record under its key; the gauges
are made from the filed records at scrape time, through the client's custom-collector interface,
one collector per metric so that `?name[]=` renders only the series asked for. A field that is
null has no series, as the spec asks (a ratio without a denominator is absent, not 0).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from streams.fact_series import RC
from streams.scrape_collector import ScrapeCollector

#: the window whose records carry the live fields (waiting, oldest wait, open tickets)
LIVE_WINDOW = "15m"

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

Record = Mapping[str, Any]
#: (label values, value) of one record's series of a metric; None values are skipped
Samples = Callable[[Record], Iterable[tuple[list[str], Any]]]


class RecordSeries:
    """The latest record of every (region, channel, window), and the gauges made from them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        #: region -> (channel, window) -> record: a region's records go at once when it leaves the worker
        self.by_region: dict[str, dict[tuple[str, str], Record]] = {}
        for name, field, documentation in ROLLING_GAUGES:
            registry.register(self._gauge(name, documentation, [*RC, "window"], _rolling(field)))
        registry.register(self._gauge("ccpulse_waiting_contacts", "Queue visits entered and not left.", list(RC),
                                      _live("waiting_now")))
        registry.register(self._gauge("ccpulse_oldest_waiting_seconds", "Wait so far of the oldest waiting visit.",
                                      list(RC), _live("oldest_waiting_s")))
        registry.register(self._gauge("ccpulse_tickets_open", "Open tickets; over_72h=true past the 72 h promise.",
                                      [*RC, "over_72h"], _tickets_open))

    def set(self, records: Iterable[Record]) -> None:
        """File the given records, replacing the ones of the same keys (others stay as they are)."""
        by_region = self.by_region
        for record in records:
            region = record["region"]
            filed = by_region.get(region)
            if filed is None:
                filed = by_region[region] = {}
            filed[(record["channel"], record["window"])] = record

    def forget(self, regions: Iterable[str]) -> None:
        for region in regions:
            self.by_region.pop(region, None)

    def _gauge(self, name: str, documentation: str, labels: list[str], samples: Samples) -> ScrapeCollector:
        """One gauge of every filed record."""
        def empty() -> GaugeMetricFamily:
            return GaugeMetricFamily(name, documentation, labels=labels)

        def fill(family: GaugeMetricFamily) -> None:
            for record in self.records():
                for label_values, value in samples(record):
                    if value is not None:
                        family.add_metric(label_values, value)

        return ScrapeCollector(empty, fill)

    def records(self) -> Iterator[Record]:
        """The filed records; copies, since the page is rendered in a thread while the event loop files
        records (dict.copy holds the GIL)."""
        for filed in self.by_region.copy().values():
            yield from filed.copy().values()


def _rolling(field: str) -> Samples:
    def samples(record: Record) -> Iterable[tuple[list[str], Any]]:
        return (([record["region"], record["channel"], record["window"]], record[field]),)
    return samples


def _live(field: str) -> Samples:
    def samples(record: Record) -> Iterable[tuple[list[str], Any]]:
        if record["window"] != LIVE_WINDOW:
            return ()
        return (([record["region"], record["channel"]], record[field]),)
    return samples


def _tickets_open(record: Record) -> Iterable[tuple[list[str], Any]]:
    if record["window"] != LIVE_WINDOW:
        return ()
    region, channel, over_72h = record["region"], record["channel"], record["tickets_open_over_72h"]
    return (([region, channel, "false"], record["tickets_open"] - over_72h), ([region, channel, "true"], over_72h))
