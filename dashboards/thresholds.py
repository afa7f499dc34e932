"""Red/amber/green threshold steps derived from the configured targets, never typed into a panel.

A channel's colours follow its own targets. The ``ALL`` rollup mixes channels with different
targets, so its colours span them: green when even the strictest channel's target is met, red when
even the loosest channel's target is missed, amber in between.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from streams.config import ChannelTargets, Settings

GREEN, AMBER, RED, NEUTRAL = "green", "orange", "red", "blue"
#: How far below a "higher is better" target a value stays amber before it turns red.
AMBER_MARGIN = 0.05

Steps = list[dict[str, Any]]


def _steps(*pairs: tuple[str, float | None]) -> Steps:
    return [{"color": color, "value": None if value is None else round(value, 6)} for color, value in pairs]


def neutral() -> Steps:
    """One colour: for values that have no target (volumes, bot share)."""
    return _steps((NEUTRAL, None))


def higher_better(green_from: float, red_below: float | None = None) -> Steps:
    """Red below ``red_below`` (default: the target minus the amber margin), amber up to the target."""
    red_below = max(0.0, green_from - AMBER_MARGIN) if red_below is None else red_below
    return _steps((RED, None), (AMBER, min(red_below, green_from)), (GREEN, green_from))


def lower_better(amber_from: float, red_from: float) -> Steps:
    """Green below ``amber_from``, amber up to ``red_from``, red from there."""
    return _steps((GREEN, None), (AMBER, amber_from), (RED, max(amber_from, red_from)))


def service_level(channel: ChannelTargets) -> Steps:
    return higher_better(channel.sl_target)


def abandonment(channel: ChannelTargets) -> Steps:
    """Amber from the target, red from twice the target; neutral for channels without one (email)."""
    if channel.abandon_target is None:
        return neutral()
    return lower_better(channel.abandon_target, 2 * channel.abandon_target)


def average_wait(channel: ChannelTargets) -> Steps:
    """An average wait past the SLA threshold means most contacts miss it: red; amber from half."""
    return lower_better(channel.sla_threshold_s / 2, channel.sla_threshold_s)


def oldest_wait(channel: ChannelTargets) -> Steps:
    """The oldest waiting contact is amber once it misses the threshold, red at twice the threshold."""
    return lower_better(channel.sla_threshold_s, 2 * channel.sla_threshold_s)


def _span(values: Iterable[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return ordered[0], ordered[-1]


def all_channels(settings: Settings) -> dict[str, Steps]:
    """Steps for the ``channel="ALL"`` rollup, keyed like the per-channel functions above."""
    channels = list(settings.channels.values())
    sl_low, sl_high = _span(c.sl_target for c in channels)
    ab_low, ab_high = _span(c.abandon_target for c in channels if c.abandon_target is not None)
    th_low, th_high = _span(c.sla_threshold_s for c in channels)
    return {
        "service_level": higher_better(sl_high, sl_low),
        "abandonment": lower_better(ab_low, ab_high),
        "average_wait": lower_better(th_low / 2, th_high),
        "oldest_wait": lower_better(th_low, th_high),
    }


def any_is_breach() -> Steps:
    """For counts of broken promises: zero is green, one or more is red."""
    return _steps((GREEN, None), (RED, 1))


def at_least_one() -> Steps:
    """For counts that must not drop to zero, such as workers up."""
    return _steps((RED, None), (GREEN, 1))


def sl_margin() -> Steps:
    """Service level minus its target: negative is a breach, within the amber margin is amber."""
    return higher_better(0.0, -AMBER_MARGIN)
