"""Pipeline health: is the pipeline keeping up, and is what it drops expected?

Events by result and rejection reason, event lag, watermark age, Kafka consumer lag (from Faust's
Prometheus sensor), partitions a worker is not reading, and the workers Prometheus can scrape.
"""

from __future__ import annotations

from typing import Any

from dashboards import thresholds as th
from dashboards.builders import Panel, dashboard, row, stat, target, timeseries
from dashboards.promql import quantile, rate_ratio, rate_sum, sel

UID = "ccpulse-pipeline"
WATERMARK_AGE = "time() - max(ccpulse_watermark_timestamp_seconds)"
CONSUMER_LAG = ("sum by (topic) (ccpulse_topic_partition_end_offset "
                "- on (topic, partition, instance) ccpulse_topic_partition_offset_commited)")
UP = 'up{job="ccpulse"}'
STALLED = "ccpulse_stalled_partitions"
#: Data older than a minute is late for a NOC; five minutes means the pipeline has stalled.
AGE_STEPS = th.lower_better(60, 300)


def _events(**labels: str) -> str:
    return sel("ccpulse_events_total", **labels)


def watermark_age(size: tuple[int, int]) -> Panel:
    """Shared with the NOC wall, so a stalled pipeline shows there too."""
    return stat("Data age", "Now minus the newest accepted event time (the watermark). Large means the "
                "pipeline or the sources have stopped.", "s", [target(WATERMARK_AGE, "Age", instant=True)],
                size, steps=AGE_STEPS, decimals=0)


def workers_up(size: tuple[int, int]) -> Panel:
    return stat("Workers up", "ccpulse workers that Prometheus scrapes successfully.", "none",
                [target(f"sum({UP})", "Up", instant=True)], size, steps=th.at_least_one(), decimals=0)


def summary() -> list[Panel]:
    return [
        row("Now"),
        stat("Events / s", "Events accepted per second over the rate interval.", "eps",
             [target(rate_sum("ccpulse_events_total", result="accepted"), "Accepted", instant=True)],
             (4, 4), decimals=1),
        stat("Rejected", "Share of incoming events rejected (sent to the dead-letter topic).",
             "percentunit", [target(rate_ratio(_events(result="rejected"), _events()), "Rejected",
                                    instant=True)], (4, 4), steps=th.lower_better(0.001, 0.01), decimals=2),
        stat("Duplicates", "Share of incoming events dropped as duplicates of an event already seen.",
             "percentunit", [target(rate_ratio(_events(result="duplicate"), _events()), "Duplicates",
                                    instant=True)], (4, 4), steps=th.lower_better(0.01, 0.05), decimals=2),
        watermark_age((4, 4)),
        stat("Consumer lag", "Messages not yet committed by the workers, all topics.", "none",
             [target(f"sum({CONSUMER_LAG})", "Lag", instant=True)], (4, 4),
             steps=th.lower_better(1000, 10000), decimals=0),
        workers_up((4, 4)),
    ]


def flow() -> list[Panel]:
    return [
        row("Events"),
        timeseries("Events by result", "Events per second: accepted, duplicate, rejected.", "eps",
                   [target(rate_sum("ccpulse_events_total", ("result",)), "{{result}}")],
                   stack=True),
        timeseries("Rejected by reason", "Rejected events per second by the reason in the dead-letter "
                   "record.", "eps",
                   [target(rate_sum("ccpulse_events_rejected_total", ("reason",)), "{{reason}}")],
                   stack=True),
        timeseries("Event lag", "Processing time minus event time, from the lag histogram.", "s",
                   [target(quantile(q, "ccpulse_event_lag_seconds"), label, ref=ref)
                    for ref, q, label in (("A", 0.5, "p50"), ("B", 0.9, "p90"), ("C", 0.99, "p99"))]),
        timeseries("Watermark age", "Now minus the newest accepted event time; dashed lines at one and "
                   "five minutes.", "s", [target(WATERMARK_AGE, "age")], steps=AGE_STEPS),
    ]


def consumers() -> list[Panel]:
    return [
        row("Kafka consumers and workers"),
        timeseries("Consumer lag by topic", "End offset minus committed offset, summed over partitions.",
                   "none", [target(CONSUMER_LAG, "{{topic}}")]),
        timeseries("Workers up", "1 while Prometheus scrapes the worker, 0 when it cannot.", "none",
                   [target(UP, "{{instance}}")], value_range=(0.0, 1.0)),
        timeseries("Partitions not read", "Assigned partitions with messages waiting and none handled for 30 s, "
                   "by worker; the worker seeks them back, and pages after 2 minutes.", "none",
                   [target(STALLED, "{{instance}}")], (24, 6), steps=th.lower_better(1, 1)),
    ]


def build(settings: Any = None) -> dict[str, Any]:
    """``settings`` is unused (nothing here has a business target) but keeps builders uniform."""
    return dashboard(
        UID, "ccpulse — pipeline health",
        "Throughput, rejections, duplicates, event lag, watermark age, consumer lag and workers.",
        [*summary(), *flow(), *consumers()],
    )
