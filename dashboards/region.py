"""Region drill-down: one region, chosen channels, every KPI over time.

The stats at the top are the region's ``channel="ALL"`` rollup; the graphs split by the chosen
channels. Gauges are the in-stream rolling values; percentiles and volumes come from the
histograms and counters, which stay right across worker restarts.
"""

from __future__ import annotations

from typing import Any

from dashboards import thresholds as th
from dashboards.builders import (
    Panel,
    dashboard,
    query_variable,
    region_variable,
    row,
    stat,
    target,
    targets,
    timeseries,
)
from dashboards.promql import per_minute, quantile, rate_ratio, sel
from streams.config import Settings

UID = "ccpulse-region"
REGION = "$region"
CHANNEL = "~$channel"
RATIO = (0.0, 1.0)


def _gauge(metric: str, window: str, channel: str = CHANNEL) -> str:
    return sel(metric, region=REGION, channel=channel, window=window)


def _by_channel(metric: str, window: str) -> list[dict[str, Any]]:
    return [target(_gauge(metric, window), "{{channel}}")]


def now(settings: Settings) -> list[Panel]:
    steps = th.all_channels(settings)
    targets_ = settings.targets

    def big(title: str, description: str, unit: str, expr: str, steps_: th.Steps | None = None) -> Panel:
        return stat(title, description, unit, [target(expr, title, instant=True)], (3, 4), steps=steps_,
                    decimals=1 if unit == "percentunit" else 0)

    return [
        row("$region now — all channels"),
        big("Service level", "Service level of the region, all channels, last 15 minutes.", "percentunit",
            _gauge("ccpulse_service_level_ratio", "15m", "ALL"), steps["service_level"]),
        big("ASA", "Mean wait of answered contacts, last 15 minutes.", "s",
            _gauge("ccpulse_wait_avg_seconds", "15m", "ALL"), steps["average_wait"]),
        big("Abandoned", "Abandonment rate (short abandons excluded), last 15 minutes.", "percentunit",
            _gauge("ccpulse_abandon_ratio", "15m", "ALL"), steps["abandonment"]),
        big("Waiting now", "Contacts in a queue of this region right now.", "none",
            f"sum({sel('ccpulse_waiting_contacts', region=REGION, channel='!ALL')})"),
        big("FCR today", "First-contact resolution since local midnight.", "percentunit",
            _gauge("ccpulse_fcr_ratio", "today", "ALL"), th.higher_better(targets_.fcr_rate)),
        big("First line today", "Resolved without escalation over ended contacts, since local midnight.",
            "percentunit", _gauge("ccpulse_first_line_ratio", "today", "ALL"),
            th.higher_better(targets_.first_line_rate)),
        big("CSAT top box today", "Share of survey scores of 5, since local midnight.", "percentunit",
            _gauge("ccpulse_csat_top_box_ratio", "today", "ALL"), th.higher_better(targets_.csat_top_box)),
        big("NPS today", "Promoters minus detractors, in points, since local midnight.", "none",
            _gauge("ccpulse_nps_score", "today", "ALL")),
    ]


def service() -> list[Panel]:
    return [
        row("Service level and waits"),
        timeseries("Service level by channel", "Rolling 15-minute service level of each chosen channel.",
                   "percentunit", _by_channel("ccpulse_service_level_ratio", "15m"), value_range=RATIO),
        timeseries("Wait percentiles", "Wait of answered contacts over the rate interval, from the "
                   "wait histogram: median, 90th and 95th percentile.", "s",
                   [target(quantile(q, "ccpulse_wait_seconds", region=REGION, channel=CHANNEL), label,
                           ref=ref) for ref, q, label in (("A", 0.5, "p50"), ("B", 0.9, "p90"),
                                                          ("C", 0.95, "p95"))]),
        timeseries("Abandonment by channel", "Rolling 15-minute abandonment rate of each chosen channel.",
                   "percentunit", _by_channel("ccpulse_abandon_ratio", "15m"), value_range=RATIO),
        timeseries("Offered by channel", "Contacts entering a queue per minute, by channel.", "cpm",
                   [target(per_minute("ccpulse_queue_offered_total", ("channel",), region=REGION,
                                      channel=CHANNEL), "{{channel}}")], stack=True),
    ]


def resolution() -> list[Panel]:
    return [
        row("Resolution, bots and surveys"),
        timeseries("FCR and first line", "Rolling 60-minute first-contact resolution and first-line "
                   "resolution of the region, all channels.", "percentunit",
                   targets((_gauge("ccpulse_fcr_ratio", "60m", "ALL"), "FCR"),
                           (_gauge("ccpulse_first_line_ratio", "60m", "ALL"), "First line")),
                   value_range=RATIO),
        timeseries("Bot share and containment", "Rolling 60-minute share of contacts handled by bots, "
                   "and bot sessions resolved by the bot, by channel.", "percentunit",
                   [target(_gauge("ccpulse_bot_share_ratio", "60m"), "share {{channel}}", ref="A"),
                    target(_gauge("ccpulse_bot_containment_ratio", "60m"), "containment {{channel}}",
                           ref="B")], value_range=RATIO),
        timeseries("CSAT top box", "Rolling 60-minute share of CSAT scores of 5, by channel.",
                   "percentunit", _by_channel("ccpulse_csat_top_box_ratio", "60m"), value_range=RATIO),
        timeseries("NPS", "Rolling 60-minute net promoter score, by channel.", "none",
                   _by_channel("ccpulse_nps_score", "60m"), value_range=(-100.0, 100.0)),
    ]


def tickets() -> list[Panel]:
    resolved = sel("ccpulse_tickets_resolved_total", region=REGION, channel=CHANNEL)
    open_ = sel("ccpulse_tickets_open", region=REGION, channel=CHANNEL)
    return [
        row("Tickets"),
        timeseries("Tickets created and resolved", "Tickets created and resolved per minute, chosen channels.", "cpm",
                   targets((per_minute("ccpulse_tickets_created_total", region=REGION, channel=CHANNEL),
                            "created"),
                           (per_minute("ccpulse_tickets_resolved_total", region=REGION, channel=CHANNEL),
                            "resolved"))),
        timeseries("Open tickets", "Tickets open now, split by whether they are past the 72-hour promise.",
                   "none", [target(f"sum by (over_72h) ({open_})", "over 72h: {{over_72h}}")], stack=True),
        timeseries("Ticket promises kept", "Of the tickets resolved over the rate interval, the share "
                   "resolved within 24 h and within 72 h of creation.", "percentunit",
                   targets((rate_ratio(sel("ccpulse_tickets_resolved_total", region=REGION,
                                           channel=CHANNEL, within="24h"), resolved), "within 24h"),
                           (rate_ratio(sel("ccpulse_tickets_resolved_total", region=REGION,
                                           channel=CHANNEL, within="~24h|72h"), resolved), "within 72h")),
                   value_range=RATIO),
    ]


def build(settings: Settings) -> dict[str, Any]:
    variables = [
        region_variable(),
        query_variable("channel", "Channel", "label_values(ccpulse_queue_offered_total, channel)",
                       multi=True),
    ]
    return dashboard(
        UID, "ccpulse — region drill-down",
        "One region over time: service level, waits, abandonment, volume, resolution, bots, surveys "
        "and tickets, by channel.",
        [*now(settings), *service(), *resolution(), *tickets()], variables=variables,
    )
