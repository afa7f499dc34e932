"""NOC wall: read from across a room in kiosk mode — country big numbers, channels, regions worst first.

Every colour comes from the configured targets (``dashboards.thresholds``). The service-level
gauges are the in-stream 15-minute values, the window the SLA alerts use.
"""

from __future__ import annotations

from typing import Any

from dashboards import pipeline
from dashboards import thresholds as th
from dashboards.builders import (
    Panel,
    colored_cells,
    dashboard,
    merge_table,
    override,
    row,
    stat,
    table,
    target,
    targets,
)
from dashboards.promql import per_minute, sel
from streams.config import Settings

UID = "ccpulse-noc-wall"
WINDOW = "15m"
SLOW_WINDOW = "60m"  # FCR and bot share move slowly; 15 minutes of them is noise
REGIONS = "!ALL"  # real regions, not the country rollup


def _gauge(metric: str, region: str = "ALL", channel: str = "ALL", window: str = WINDOW) -> str:
    return sel(metric, region=region, channel=channel, window=window)


def _live(metric: str, aggregate: str, by: str = "", **labels: str) -> str:
    """A live gauge summed or maximised over the per-(region, channel) series (rollups excluded)."""
    grouping = f" by ({by})" if by else ""
    return f"{aggregate}{grouping} ({sel(metric, **{'region': '!ALL', 'channel': '!ALL', **labels})})"


def country(settings: Settings) -> list[Panel]:
    """Seven big numbers for all regions and channels together."""
    steps = th.all_channels(settings)
    return [
        row("Country — all channels, last 15 min"),
        stat("Service level", "Answered within the channel's SLA threshold over answered plus abandoned "
             "(short abandons excluded), all regions and channels, last 15 minutes.", "percentunit",
             [target(_gauge("ccpulse_service_level_ratio"), "SL", instant=True)], (4, 5),
             steps=steps["service_level"], decimals=1),
        stat("ASA", "Average speed of answer: mean wait of answered contacts, last 15 minutes.", "s",
             [target(_gauge("ccpulse_wait_avg_seconds"), "ASA", instant=True)], (3, 5),
             steps=steps["average_wait"], decimals=0),
        stat("Abandoned", "Abandoned (not short) over answered plus abandoned, last 15 minutes.",
             "percentunit", [target(_gauge("ccpulse_abandon_ratio"), "Abandoned", instant=True)], (3, 5),
             steps=steps["abandonment"], decimals=1),
        stat("FCR", "First-contact resolution: resolved on first contact over resolved contacts that "
             "say so, last 60 minutes.", "percentunit",
             [target(_gauge("ccpulse_fcr_ratio", window=SLOW_WINDOW), "FCR", instant=True)], (3, 5),
             steps=th.higher_better(settings.targets.fcr_rate), decimals=1),
        stat("Bot share", "Contacts handled end to end by a bot over all ended contacts, last 60 minutes. "
             "No target: shown for context.", "percentunit",
             [target(_gauge("ccpulse_bot_share_ratio", window=SLOW_WINDOW), "Bot share", instant=True)],
             (3, 5), decimals=1),
        stat("Waiting now", "Contacts in a queue right now, all regions and channels.", "none",
             [target(_live("ccpulse_waiting_contacts", "sum"), "Waiting", instant=True)], (4, 5),
             decimals=0),
        stat("Oldest wait", "How long the longest-waiting contact has waited so far, any channel.", "s",
             [target(_live("ccpulse_oldest_waiting_seconds", "max"), "Oldest", instant=True)], (4, 5),
             steps=steps["oldest_wait"], decimals=0),
    ]


def _by_ref(ref: str, name: str, unit: str, steps: th.Steps) -> dict[str, Any]:
    return override(("byFrameRefID", ref), displayName=name, unit=unit,
                    thresholds={"mode": "absolute", "steps": steps})


def channel_panel(name: str, settings: Settings) -> Panel:
    """One channel, country-wide: five numbers, each coloured by that channel's own targets."""
    targets_ = settings.channel(name)
    queries = targets(
        (_gauge("ccpulse_service_level_ratio", channel=name), "SL"),
        (_gauge("ccpulse_wait_avg_seconds", channel=name), "ASA"),
        (_gauge("ccpulse_abandon_ratio", channel=name), "Abandoned"),
        (_live("ccpulse_waiting_contacts", "sum", channel=name), "Waiting"),
        (_live("ccpulse_oldest_waiting_seconds", "max", channel=name), "Oldest"),
        instant=True,
    )
    overrides = [
        _by_ref("A", "SL", "percentunit", th.service_level(targets_)),
        _by_ref("B", "ASA", "s", th.average_wait(targets_)),
        _by_ref("C", "Abandoned", "percentunit", th.abandonment(targets_)),
        _by_ref("D", "Waiting", "none", th.neutral()),
        _by_ref("E", "Oldest", "s", th.oldest_wait(targets_)),
    ]
    abandon = "none" if targets_.abandon_target is None else f"{targets_.abandon_target:.0%}"
    description = (f"{name}, all regions, last 15 minutes. Targets: SL ≥ {targets_.sl_target:.0%} within "
                   f"{targets_.sla_threshold_s:g} s, abandonment ≤ {abandon}.")
    return stat(name, description, "none", queries, (6, 5), overrides=overrides, decimals=1,
                text_mode="value_and_name")


def channels(settings: Settings) -> list[Panel]:
    return [row("Channels — country, last 15 min"),
            *(channel_panel(name, settings) for name in settings.channels)]


def sl_margin_expr(settings: Settings) -> str:
    """Per region, the worst (service level − that channel's target) over its channels."""
    parts = [f"({_gauge('ccpulse_service_level_ratio', REGIONS, name)} - {c.sl_target:g})"
             for name, c in settings.channels.items()]
    return f"min by (region) ({' or '.join(parts)})"


def pipeline_pulse() -> list[Panel]:
    """Two small stats so a stalled pipeline is seen on the wall, not only on the health dashboard."""
    return [pipeline.watermark_age((3, 5)), pipeline.workers_up((3, 5))]


def regions(settings: Settings) -> list[Panel]:
    """All regions in one table, worst service level against target first; firing alerts beside it."""
    steps = th.all_channels(settings)
    columns = {"Value #A": "SL vs target", "Value #B": "SL", "Value #C": "Abandoned", "Value #D": "ASA",
               "Value #E": "Waiting", "Value #F": "Oldest wait", "Value #G": "Offered / min",
               "region": "Region"}
    queries = targets(
        (sl_margin_expr(settings), ""),
        (f"max by (region) ({_gauge('ccpulse_service_level_ratio', REGIONS)})", ""),
        (f"max by (region) ({_gauge('ccpulse_abandon_ratio', REGIONS)})", ""),
        (f"max by (region) ({_gauge('ccpulse_wait_avg_seconds', REGIONS)})", ""),
        (_live("ccpulse_waiting_contacts", "sum", "region"), ""),
        (_live("ccpulse_oldest_waiting_seconds", "max", "region"), ""),
        (per_minute("ccpulse_queue_offered_total", ("region",)), ""),
        instant=True, table=True,
    )
    region_table = table(
        "Regions — worst first",
        "Every region, sorted by its worst channel's service level minus that channel's target "
        "(negative: in breach). Other columns are all channels together, last 15 minutes.",
        "none", queries, (16, 13), transformations=merge_table(columns), sort_by=("SL vs target", False),
        overrides=[
            colored_cells("SL vs target", "percentunit", th.sl_margin()),
            colored_cells("SL", "percentunit", steps["service_level"], "color-text"),
            colored_cells("Abandoned", "percentunit", steps["abandonment"], "color-text"),
            colored_cells("ASA", "s", steps["average_wait"], "color-text"),
            colored_cells("Waiting", "none", th.neutral(), "auto"),
            colored_cells("Oldest wait", "s", steps["oldest_wait"], "color-text"),
            colored_cells("Offered / min", "none", th.neutral(), "auto"),
        ],
    )
    alerts = table(
        "Firing alerts", "Prometheus alerts firing now (SLA breaches and pipeline alerts).", "none",
        [target('ALERTS{alertstate="firing"}', "", instant=True, table=True)], (8, 13),
        transformations=merge_table({}, hidden=("Time", "Value", "__name__", "alertstate")),
        sort_by=("severity", False), no_value="No alerts firing",
    )
    return [row("Regions and alerts"), region_table, alerts]


def build(settings: Settings) -> dict[str, Any]:
    return dashboard(
        UID, "ccpulse — NOC wall",
        "Country-wide service at a glance for a wall screen: open with ?kiosk. Colours follow the "
        "configured targets; NO DATA means the series is missing, never zero.",
        [*country(settings), *channels(settings), *pipeline_pulse(), *regions(settings)],
        refresh="30s", time_from="now-3h", hide_datasource=True,
    )
