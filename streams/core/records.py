"""Metric records (spec: Windows, Ratios, Rollups, Record) read from the aggregator at `as_of`.

Rollups add bucket counts and merge wait bins, then compute ratios: ratios are never averaged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from streams.config import ChannelTargets
from streams.core.aggregator import Aggregator, PairState
from streams.core.buckets import INDEX, WAIT_BINS, Bucket, merge_into, new_bucket
from streams.core.histogram import percentile_us
from streams.core.timefmt import DAY_MS, MINUTE_MS, format_minute, format_ms
from streams.regions import zone

SCHEMA = "ccpulse.metrics/v1"
ALL = "ALL"
ROLLING_WINDOWS: tuple[tuple[str, int], ...] = (("5m", 5), ("15m", 15), ("60m", 60))
WINDOWS: tuple[str, ...] = ("5m", "15m", "60m", "today")
OVER_72H_MS = 3 * DAY_MS

Live = list  # [waiting_now, oldest entry ms or None, waiting_over_sla, tickets_open, tickets_open_over_72h]


def local_midnight_minute(region: str, as_of_ms: int) -> int:
    """Minute index of local midnight of `as_of`'s date in the region's zone (Moscow for ALL)."""
    tz = zone(region)
    local = dt.datetime.fromtimestamp(as_of_ms / 1000, tz=tz)
    midnight = dt.datetime(local.year, local.month, local.day, tzinfo=tz)
    return int(midnight.timestamp()) * 1000 // MINUTE_MS


def sum_range(pair: PairState, start_minute: int, end_minute: int) -> Bucket:
    """Sum of minute buckets in [start, end): the newest minute added to the pair's kept merge of
    the others, so a window read every second costs two merges, not one per minute."""
    total = new_bucket()
    newest = end_minute - 1
    merge_into(total, pair.span_bucket(start_minute, newest))
    bucket = pair.minutes.get(newest)
    if bucket is not None:
        merge_into(total, bucket)
    return total


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else numerator / denominator


def _seconds(value_us: float | None) -> float | None:
    """Durations are kept in microseconds; records carry seconds to the millisecond."""
    return None if value_us is None else round(value_us / 1_000_000, 3)


def fields_of(bucket: Bucket) -> dict[str, Any]:
    """The counts and ratios of a record from one summed bucket."""
    c = {name: bucket[i] for name, i in INDEX.items()}
    answered = c["answered"]
    long_abandoned = c["abandoned"] - c["short_abandoned"]
    handled = answered + long_abandoned
    wait_max = c["wait_max_us"]

    def wait_percentile(percent: float) -> float | None:
        return _seconds(percentile_us(bucket[WAIT_BINS], answered, percent, wait_max)) if answered else None

    nps_n = c["nps_responses"]
    return {
        "contacts": c["contacts"], "offered": c["offered"], "answered": answered,
        "abandoned": c["abandoned"], "short_abandoned": c["short_abandoned"],
        "answered_within_sla": c["answered_within_sla"],
        "service_level": _ratio(c["answered_within_sla"], handled),
        "abandon_rate": _ratio(long_abandoned, handled),
        "wait_avg_s": _seconds(_ratio(c["wait_sum_us"], answered)),
        "wait_p50_s": wait_percentile(50), "wait_p90_s": wait_percentile(90), "wait_p95_s": wait_percentile(95),
        "wait_max_s": _seconds(wait_max) if answered else None,
        "ended": c["ended"], "resolved": c["resolved"], "resolution_rate": _ratio(c["resolved"], c["ended"]),
        "resolved_first_contact": c["resolved_first_contact"], "fcr_known": c["fcr_known"],
        "fcr_rate": _ratio(c["resolved_first_contact"], c["fcr_known"]),
        "escalated": c["escalated"], "first_line_rate": _ratio(c["first_line"], c["ended"]),
        "bot_handled": c["bot_handled"], "agent_handled": c["agent_handled"],
        "bot_share": _ratio(c["bot_handled"], c["bot_handled"] + c["agent_handled"]),
        "bot_sessions": c["bot_sessions"], "bot_resolved": c["bot_resolved"],
        "bot_handoffs": c["bot_handoffs"], "bot_abandoned": c["bot_abandoned"],
        "bot_containment": _ratio(c["bot_resolved"], c["bot_sessions"]),
        "handle_avg_s": _seconds(_ratio(c["handle_sum_us"], c["handle_count"])),
        "csat_responses": c["csat_responses"], "csat_avg": _ratio(c["csat_sum"], c["csat_responses"]),
        "csat_top_box": _ratio(c["csat_5"], c["csat_responses"]),
        "csat_top2": _ratio(c["csat_4plus"], c["csat_responses"]),
        "nps_responses": nps_n,
        "nps": None if nps_n == 0 else 100 * (c["nps_promoters"] - c["nps_detractors"]) / nps_n,
        "tickets_created": c["tickets_created"], "tickets_resolved": c["tickets_resolved"],
        "ticket_24h_rate": _ratio(c["tickets_24h"], c["tickets_resolved"]),
        "ticket_72h_rate": _ratio(c["tickets_72h"], c["tickets_resolved"]),
    }


def live_of(pair: PairState, as_of_ms: int, sla_ms: int, horizon_ms: int) -> Live:
    """Live values at `as_of`; entries after `as_of` or past the horizon are not counted."""
    oldest: int | None = None
    waiting = over_sla = 0
    floor = as_of_ms - horizon_ms
    for entered in pair.waiting.values():
        if floor <= entered <= as_of_ms:
            waiting += 1
            if oldest is None or entered < oldest:
                oldest = entered
            if as_of_ms - entered > sla_ms:
                over_sla += 1
    tickets = over_72h = 0
    for created in pair.tickets_open.values():
        if created <= as_of_ms:
            tickets += 1
            if as_of_ms - created > OVER_72H_MS:
                over_72h += 1
    return [waiting, oldest, over_sla, tickets, over_72h]


def merge_live(target: Live, source: Live) -> None:
    target[0] += source[0]
    if source[1] is not None and (target[1] is None or source[1] < target[1]):
        target[1] = source[1]
    target[2] += source[2]
    target[3] += source[3]
    target[4] += source[4]


def _has_data(pair: PairState, live: Live, since_minute: int) -> bool:
    return any(live[i] for i in (0, 3)) or any(m >= since_minute for m in pair.minutes)


class _Accumulator:
    """Window sums and live values of one record key, built by merging pairs."""

    __slots__ = ("live", "windows")

    def __init__(self) -> None:
        self.windows: dict[str, Bucket] = {name: new_bucket() for name in WINDOWS}
        self.live: Live = [0, None, 0, 0, 0]

    def add(self, windows: Mapping[str, Bucket], live: Live) -> None:
        for name, bucket in windows.items():
            merge_into(self.windows[name], bucket)
        merge_live(self.live, live)


def build_records(aggregator: Aggregator, as_of_ms: int, channels: Mapping[str, ChannelTargets], *,
                  country: bool = True) -> list[dict[str, Any]]:
    """All records at `as_of`, sorted by region, channel, window: each (region, channel) with data and
    its rollups. A pair whose region is already ALL (the country rollup's own state) only feeds the
    ALL keys, since the set of keys it adds to collapses. Without `country`, the `region=ALL`
    rollups are left out (a worker's share of the regions: the country rollup makes them)."""
    end = as_of_ms // MINUTE_MS + 1
    since = (as_of_ms - aggregator.horizon_ms) // MINUTE_MS
    midnights: dict[str, int] = {ALL: local_midnight_minute(ALL, as_of_ms)}
    keys: dict[tuple[str, str], _Accumulator] = {}

    for (region, channel), pair in aggregator.pairs.items():
        live = live_of(pair, as_of_ms, aggregator.sla_us[channel] // 1000, aggregator.horizon_ms)
        if not _has_data(pair, live, since):
            continue
        rolling = {name: sum_range(pair, end - size, end) for name, size in ROLLING_WINDOWS}
        if region not in midnights:
            midnights[region] = local_midnight_minute(region, as_of_ms)
        today = {midnights[region]: sum_range(pair, midnights[region], end)}
        targets = {(region, channel), (region, ALL), (ALL, channel), (ALL, ALL)} if country else \
            {(region, channel), (region, ALL)}
        for target in targets:
            start = midnights[target[0]]
            if start not in today:
                today[start] = sum_range(pair, start, end)
            acc = keys.get(target)
            if acc is None:
                acc = keys[target] = _Accumulator()
            acc.add({**rolling, "today": today[start]}, live)

    # the times every record carries, formatted once per build
    bounds = {"as_of": format_ms(as_of_ms), "window_end": format_minute(end * MINUTE_MS)}
    starts = {name: format_minute((end - size) * MINUTE_MS) for name, size in ROLLING_WINDOWS}
    records = []
    for (region, channel) in sorted(keys):
        acc = keys[(region, channel)]
        starts["today"] = format_minute(midnights[region] * MINUTE_MS)
        for window in WINDOWS:
            records.append(_record(region, channel, window, {"window_start": starts[window], **bounds}, as_of_ms,
                                   acc.windows[window], acc.live, channels))
    return records


def _record(region: str, channel: str, window: str, bounds: Mapping[str, str], as_of_ms: int, bucket: Bucket,
            live: Live, channels: Mapping[str, ChannelTargets]) -> dict[str, Any]:
    threshold = None if channel == ALL else channels[channel].sla_threshold_s
    if threshold is not None and float(threshold).is_integer():
        threshold = int(threshold)
    record: dict[str, Any] = {
        "schema": SCHEMA, "region": region, "channel": channel, "window": window,
        "window_start": bounds["window_start"], "window_end": bounds["window_end"], "as_of": bounds["as_of"],
        "sla_threshold_s": threshold,
    }
    record.update(fields_of(bucket))
    waiting, oldest, over_sla, tickets_open, over_72h = live
    record.update({
        "waiting_now": waiting,
        "oldest_waiting_s": None if oldest is None else _seconds((as_of_ms - oldest) * 1000),
        "waiting_over_sla": over_sla,
        "tickets_open": tickets_open,
        "tickets_open_over_72h": over_72h,
    })
    return record
