"""Incident scenarios injected into simulated traffic (``--scenario NAME[:key=value,...]``).

Traffic scenarios change what happens to contacts in a time span (a region's voice queue
collapsing, a bot outage, a channel surge); delivery scenarios change how the finished events
reach the sink (late and out of order, duplicated, malformed). Times are RFC 3339 or offsets
from the simulation start (``start=+10m``); ``duration=0`` means until the end of the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from streams.config import CHANNELS
from streams.errors import CcpulseError
from streams.simulate.units import parse_duration, parse_instant


@dataclass(frozen=True)
class Span:
    """Event-time span ``[start_ms, end_ms)`` in which a traffic scenario is active."""

    start_ms: int
    end_ms: float

    def covers(self, ts_ms: float) -> bool:
        return self.start_ms <= ts_ms < self.end_ms


@dataclass(frozen=True)
class VoiceCollapse:
    """Voice waits in one region grow ``factor`` times; abandonment follows from customer patience."""

    region: str
    span: Span
    factor: float


@dataclass(frozen=True)
class BotOutage:
    """Bots hand almost every session to a human queue (``handoff`` share of bot outcomes)."""

    region: str | None
    span: Span
    handoff: float


@dataclass(frozen=True)
class Surge:
    """Arrivals of one channel grow ``factor`` times."""

    channel: str
    region: str | None
    span: Span
    factor: float


@dataclass(frozen=True)
class Late:
    """A share of events is delivered up to ``max_ms`` after its event time (out of order)."""

    share: float
    max_ms: int


@dataclass(frozen=True)
class Duplicates:
    """A share of events is sent again, byte for byte, within a minute."""

    share: float


@dataclass(frozen=True)
class Malformed:
    """For a share of events an extra invalid one is sent, cycling through every rejection reason."""

    share: float


Scenario = VoiceCollapse | BotOutage | Surge | Late | Duplicates | Malformed

#: name -> (default options, builder(options, start_ms, regions))
_Builder = Callable[[Mapping[str, str], int, Iterable[str]], Scenario]


def _span(opts: Mapping[str, str], start_ms: int) -> Span:
    begin = parse_instant(opts["start"], now_ms=start_ms)
    duration = parse_duration(opts["duration"])
    return Span(begin, begin + duration * 1000 if duration else math.inf)


def _share(name: str, opts: Mapping[str, str], key: str) -> float:
    value = _number(name, opts, key)
    if not 0 <= value <= 1:
        raise CcpulseError(f"scenario {name}: {key}={opts[key]} must be between 0 and 1")
    return value


def _number(name: str, opts: Mapping[str, str], key: str) -> float:
    try:
        value = float(opts[key])
    except ValueError:
        raise CcpulseError(f"scenario {name}: {key}={opts[key]!r} is not a number") from None
    if value < 0 or not math.isfinite(value):
        raise CcpulseError(f"scenario {name}: {key}={opts[key]} must be a non-negative number")
    return value


def _region(name: str, opts: Mapping[str, str], regions: Iterable[str]) -> str | None:
    code = opts.get("region") or None
    if code in (None, "ALL"):
        return None
    if code not in set(regions):
        raise CcpulseError(f"scenario {name}: region {code} is not among the simulated regions")
    return code


def _voice_collapse(opts: Mapping[str, str], start_ms: int, regions: Iterable[str]) -> Scenario:
    region = _region("voice-collapse", opts, regions)
    if region is None:
        raise CcpulseError("scenario voice-collapse: needs one region, e.g. region=RU-CHE")
    return VoiceCollapse(region, _span(opts, start_ms), _number("voice-collapse", opts, "factor"))


def _bot_outage(opts: Mapping[str, str], start_ms: int, regions: Iterable[str]) -> Scenario:
    return BotOutage(_region("bot-outage", opts, regions), _span(opts, start_ms),
                     _share("bot-outage", opts, "handoff"))


def _surge(opts: Mapping[str, str], start_ms: int, regions: Iterable[str]) -> Scenario:
    if opts["channel"] not in CHANNELS:
        raise CcpulseError(f"scenario surge: unknown channel {opts['channel']!r} "
                           f"(known: {', '.join(CHANNELS)})")
    return Surge(opts["channel"], _region("surge", opts, regions), _span(opts, start_ms),
                 _number("surge", opts, "factor"))


def _late(opts: Mapping[str, str], start_ms: int, regions: Iterable[str]) -> Scenario:
    max_ms = round(parse_duration(opts["max"]) * 1000)
    if max_ms < 1:
        raise CcpulseError("scenario late: max must be positive")
    return Late(_share("late", opts, "share"), max_ms)


SCENARIOS: dict[str, tuple[dict[str, str], _Builder]] = {
    "voice-collapse": ({"region": "RU-CHE", "start": "+10m", "duration": "30m", "factor": "10"},
                       _voice_collapse),
    "bot-outage": ({"region": "ALL", "start": "+10m", "duration": "30m", "handoff": "0.92"}, _bot_outage),
    "surge": ({"channel": "chat", "factor": "3", "region": "ALL", "start": "+0s", "duration": "0"}, _surge),
    "late": ({"share": "0.05", "max": "2h"}, _late),
    "duplicates": ({"share": "0.02"}, lambda o, _s, _r: Duplicates(_share("duplicates", o, "share"))),
    "malformed": ({"share": "0.01"}, lambda o, _s, _r: Malformed(_share("malformed", o, "share"))),
}


def parse(text: str, start_ms: int, regions: Iterable[str]) -> Scenario:
    """One scenario from ``NAME[:key=value,...]``; unknown names and options fail with one clear line."""
    name, _, rest = text.strip().partition(":")
    if name not in SCENARIOS:
        raise CcpulseError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})")
    defaults, build = SCENARIOS[name]
    opts: dict[str, Any] = dict(defaults)
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or key.strip() not in defaults:
            raise CcpulseError(f"scenario {name}: bad option {item!r} (options: {', '.join(defaults)})")
        opts[key.strip()] = value.strip()
    return build(opts, start_ms, regions)
