"""The peers' job, shared so both compute the same thing: wait and service level of a queue visit.

Per the spec: a visit counts in the service level's denominator when answered, or abandoned after
the short-abandon threshold; it is within SLA when answered with a wait at or under the channel's
threshold; the wait average is over answered visits.
"""

from __future__ import annotations

from streams.config import DEFAULT_CHANNELS

SHORT_ABANDON_S = 5.0
WINDOW_MS = 15 * 60_000
STEP_MS = 60_000
SLA_S = {name: targets.sla_threshold_s for name, targets in DEFAULT_CHANNELS.items()}


def visit_counts(channel: str, reason: str, wait_s: float) -> tuple[int, float, int, int]:
    """(answered, wait of answered, answered within SLA, service-level denominator) of one visit."""
    if reason == "answered":
        return 1, wait_s, int(wait_s <= SLA_S[channel]), 1
    if reason == "abandoned" and wait_s >= SHORT_ABANDON_S:
        return 0, 0.0, 0, 1
    return 0, 0.0, 0, 0


def summary(answered: float, wait_sum: float, within: float, denominator: float) -> dict[str, float | None]:
    """The two figures of a window; None when the denominator is 0, as in the spec."""
    return {"wait_avg_s": wait_sum / answered if answered else None,
            "service_level": within / denominator if denominator else None}
