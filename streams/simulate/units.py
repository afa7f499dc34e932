"""Parsing of the simulator's time options: durations (``1h``, ``90m``, ``1h30m``) and instants."""

from __future__ import annotations

import re
import time

from streams.core.timefmt import parse_rfc3339
from streams.errors import CcpulseError

_UNIT_S = {"d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")


def parse_duration(text: str) -> float:
    """Seconds of a duration such as ``30s``, ``90m``, ``1h30m``, ``1d`` or a bare number of seconds."""
    cleaned = text.strip().lower()
    try:
        return _non_negative(float(cleaned), text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _PART.finditer(cleaned):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    if pos != len(cleaned) or not cleaned:
        raise CcpulseError(f"invalid duration {text!r} (examples: 30s, 90m, 1h30m, 1d, 0)")
    return total


def _non_negative(value: float, text: str) -> float:
    if value < 0:
        raise CcpulseError(f"invalid duration {text!r}: must not be negative")
    return value


def parse_instant(text: str, now_ms: int | None = None) -> int:
    """Epoch ms of ``now``, an RFC 3339 timestamp, or an offset from now such as ``-1h`` or ``+10m``."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    cleaned = text.strip()
    if cleaned == "now":
        return now_ms
    if cleaned[:1] in "+-" and cleaned[1:2].isdigit():
        sign = -1 if cleaned[0] == "-" else 1
        return now_ms + sign * round(parse_duration(cleaned[1:]) * 1000)
    try:
        return parse_rfc3339(cleaned)
    except ValueError:
        raise CcpulseError(f"invalid time {text!r} (use now, an RFC 3339 timestamp, or +10m / -1h)") from None
