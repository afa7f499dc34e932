"""Counts kept per (region, channel, minute): a flat list so that adding and merging stay cheap.

Durations are integer microseconds so sums are exact (and sub-millisecond `wait_s` values still
compare exactly with thresholds) whatever the order of addition. The last
slot holds the sparse wait bins of answered visits ({bin index: count}).
"""

from __future__ import annotations

FIELDS: tuple[str, ...] = (
    "contacts", "offered", "answered", "abandoned", "short_abandoned", "answered_within_sla",
    "wait_sum_us", "wait_max_us",
    "ended", "resolved", "resolved_first_contact", "fcr_known", "escalated", "first_line",
    "bot_handled", "agent_handled",
    "bot_sessions", "bot_resolved", "bot_handoffs", "bot_abandoned",
    "handle_sum_us", "handle_count",
    "csat_responses", "csat_sum", "csat_5", "csat_4plus",
    "nps_responses", "nps_promoters", "nps_detractors",
    "tickets_created", "tickets_resolved", "tickets_24h", "tickets_72h",
)
INDEX: dict[str, int] = {name: i for i, name in enumerate(FIELDS)}
COUNTS = len(FIELDS)
WAIT_BINS = COUNTS
MAX_FIELDS = frozenset({INDEX["wait_max_us"]})
_SUMMED = tuple(i for i in range(COUNTS) if i not in MAX_FIELDS)
_WAIT_MAX = INDEX["wait_max_us"]

Bucket = list  # [int * COUNTS, dict[int, int]]


_ZEROS: Bucket = [0] * COUNTS


def new_bucket() -> Bucket:
    """Built in one display, which sizes the list exactly: appending the bins to a list of the counts
    left 11 spare slots in every bucket, 88 bytes of each of a day's ~115,000 minute buckets (9 MiB)."""
    return [*_ZEROS, {}]


def merge_into(target: Bucket, source: Bucket) -> None:
    """Add `source` to `target`: counts add, maxima take the larger, wait bins add."""
    for i in _SUMMED:
        target[i] += source[i]
    if source[_WAIT_MAX] > target[_WAIT_MAX]:
        target[_WAIT_MAX] = source[_WAIT_MAX]
    bins = target[WAIT_BINS]
    for index, count in source[WAIT_BINS].items():
        bins[index] = bins.get(index, 0) + count


def add_scaled(target: Bucket, source: Bucket, sign: int) -> None:
    """Add (sign=1) or take away (sign=-1) the summed counts and wait bins of `source`; the
    maximum cannot be taken away, so callers that replace a bucket recompute it."""
    for i in _SUMMED:
        target[i] += sign * source[i]
    bins = target[WAIT_BINS]
    for index, count in source[WAIT_BINS].items():
        left = bins.get(index, 0) + sign * count
        if left:
            bins[index] = left
        else:
            bins.pop(index, None)
