"""Ticket promises: how many tickets are open, how many broke the 72-hour promise, attainment.

The spec exports open tickets split only by ``over_72h``, so "at risk" is read here as "open and
still within the promise"; the 24 h / 72 h attainment is over the dashboard's time range.
"""

from __future__ import annotations

from typing import Any

from dashboards import thresholds as th
from dashboards.builders import (
    Panel,
    colored_cells,
    dashboard,
    merge_table,
    region_variable,
    row,
    stat,
    table,
    target,
    targets,
    timeseries,
)
from dashboards.promql import per_minute, rate_ratio, sel
from streams.config import Settings

UID = "ccpulse-tickets"
REGION = "~$region"
OPEN = "ccpulse_tickets_open"
RESOLVED = "ccpulse_tickets_resolved_total"
WITHIN = {"24h": "24h", "72h": "~24h|72h"}  # the `within` label: 24h, 72h (after 24h), later
RATIO = (0.0, 1.0)


def _open(over_72h: str | None = None) -> str:
    labels = {"region": REGION, "channel": "!ALL"}
    if over_72h is not None:
        labels["over_72h"] = over_72h
    return sel(OPEN, **labels)


def _kept_over_range(within: str) -> str:
    """Share of tickets resolved in the dashboard's range that were resolved within the promise."""
    kept = sel(RESOLVED, region=REGION, within=WITHIN[within])
    return f"sum(increase({kept}[$__range])) / sum(increase({sel(RESOLVED, region=REGION)}[$__range]))"


def summary(settings: Settings) -> list[Panel]:
    targets_ = settings.targets
    return [
        row("Promises now"),
        stat("Open tickets", "Tickets created and not yet resolved, chosen regions.", "none",
             [target(f"sum({_open()})", "Open", instant=True)], (5, 5), decimals=0),
        stat("Open, within 72 h", "Open tickets still inside the 72-hour promise: the ones at risk.",
             "none", [target(f"sum({_open('false')})", "At risk", instant=True)], (5, 5), decimals=0),
        stat("Past 72 h", "Open tickets older than 72 hours: promises already broken.", "none",
             [target(f"sum({_open('true')})", "Past 72 h", instant=True)], (4, 5),
             steps=th.any_is_breach(), decimals=0),
        stat("Resolved within 24 h", f"Tickets resolved within 24 h of creation over tickets resolved, "
             f"dashboard time range. Target {targets_.ticket_24h_rate:.0%}.", "percentunit",
             [target(_kept_over_range("24h"), "24 h", instant=True)], (5, 5),
             steps=th.higher_better(targets_.ticket_24h_rate), decimals=1),
        stat("Resolved within 72 h", f"Tickets resolved within 72 h of creation over tickets resolved, "
             f"dashboard time range. Target {targets_.ticket_72h_rate:.0%}.", "percentunit",
             [target(_kept_over_range("72h"), "72 h", instant=True)], (5, 5),
             steps=th.higher_better(targets_.ticket_72h_rate), decimals=1),
    ]


def trends(settings: Settings) -> list[Panel]:
    resolved = sel(RESOLVED, region=REGION)
    steps = th.higher_better(settings.targets.ticket_24h_rate)
    return [
        row("Over time"),
        timeseries("Created and resolved", "Tickets created and resolved per minute, chosen regions.", "cpm",
                   targets((per_minute("ccpulse_tickets_created_total", region=REGION), "created"),
                           (per_minute(RESOLVED, region=REGION), "resolved"))),
        timeseries("Open tickets", "Open tickets, split by whether they are past the 72-hour promise.",
                   "none", [target(f"sum by (over_72h) ({_open()})", "over 72h: {{over_72h}}")],
                   stack=True),
        timeseries("Promise attainment", "Of the tickets resolved over the rate interval, the share "
                   "resolved within 24 h and 72 h; the dashed lines mark the 24 h target.", "percentunit",
                   targets((rate_ratio(sel(RESOLVED, region=REGION, within=WITHIN["24h"]), resolved),
                            "within 24h"),
                           (rate_ratio(sel(RESOLVED, region=REGION, within=WITHIN["72h"]), resolved),
                            "within 72h")), steps=steps, value_range=RATIO),
        table("Regions by tickets past 72 h", "Open tickets per region, those past the 72-hour promise "
              "first.", "none", targets((f"sum by (region) ({_open('true')})", ""),
                              (f"sum by (region) ({_open()})", ""), instant=True, table=True),
              transformations=merge_table({"region": "Region", "Value #A": "Past 72 h", "Value #B": "Open"}),
              sort_by=("Past 72 h", True), overrides=[colored_cells("Past 72 h", "none", th.any_is_breach())]),
    ]


def build(settings: Settings) -> dict[str, Any]:
    variables = [region_variable(multi=True)]
    return dashboard(
        UID, "ccpulse — ticket promises",
        "Open tickets, those within and past the 72-hour promise, and 24 h / 72 h attainment.",
        [*summary(settings), *trends(settings)], variables=variables, time_from="now-24h",
    )
