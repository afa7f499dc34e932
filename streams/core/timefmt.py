"""Event-time parsing and formatting in integer epoch milliseconds.

Integer milliseconds keep every sum exact, so a result does not depend on the order in which
floating-point values were added (streaming must equal replay to the last digit).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from functools import lru_cache

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000

_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))\Z"
)
#: epoch milliseconds accepted as integer timestamps: 2000-01-01 .. 2100-01-01
MIN_EPOCH_MS = 946_684_800_000
MAX_EPOCH_MS = 4_102_444_800_000


@lru_cache(maxsize=4096)
def _day_ms(date_text: str) -> int:
    """Epoch ms of a UTC calendar day; cached because a stream spans few days."""
    day = dt.date.fromisoformat(date_text)
    return (day.toordinal() - 719_163) * 86_400_000


_MINUTES: dict[str, int] = {}
_MINUTES_LIMIT = 100_000
#: "SS" -> milliseconds (a leap second counts as 59) and ".mmmZ" -> milliseconds, ASCII digits only
_SECOND_MS = {f"{second:02d}": min(second, 59) * 1000 for second in range(61)}
_FRACTION_MS = {f".{millis:03d}Z": millis for millis in range(1000)}


def parse_rfc3339(text: str) -> int:
    """Epoch milliseconds of an RFC 3339 timestamp; ValueError when it is not one.

    The common `YYYY-MM-DDTHH:MM:SS.mmmZ` form is read from three lookups: the minute (cached as
    parsed: a stream carries many events per minute), the second and the fraction with its `Z`
    (fixed small tables, which stay in the CPU's cache where a table of every "SS.mmm" did not).
    The three keys found cover the text exactly (17, 2 and 5 characters), so no other check is
    needed; everything else takes the full parse."""
    base = _MINUTES.get(text[:17])
    if base is not None:
        second = _SECOND_MS.get(text[17:19])
        fraction = _FRACTION_MS.get(text[19:])
        if second is not None and fraction is not None:
            return base + second + fraction
    value = _parse(text)
    if len(text) == 24 and text[19] == "." and text[23] == "Z":  # this form: its minute is its first 17 characters
        if len(_MINUTES) >= _MINUTES_LIMIT:
            _MINUTES.clear()
        _MINUTES[text[:17]] = value - value % MINUTE_MS
    return value


def _parse(text: str) -> int:
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError("not an RFC 3339 timestamp")
    date_text, hh, mm, ss, frac, zulu, sign, oh, om = match.groups()
    hour, minute, second = int(hh), int(mm), int(ss)
    if hour > 23 or minute > 59 or second > 60:
        raise ValueError("time of day out of range")
    millis = int((frac + "00")[:3]) if frac else 0
    value = _day_ms(date_text) + ((hour * 60 + minute) * 60 + min(second, 59)) * 1000 + millis
    if not zulu:
        offset_h, offset_m = int(oh), int(om)
        if offset_h > 23 or offset_m > 59:
            raise ValueError("offset out of range")
        offset = (offset_h * 60 + offset_m) * MINUTE_MS
        value -= offset if sign == "+" else -offset
    return value


def format_ms(epoch_ms: int) -> str:
    """RFC 3339 UTC with milliseconds and `Z`, the form used in records and dead letters."""
    moment = dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def format_minute(epoch_ms: int) -> str:
    """RFC 3339 UTC without fractions, for window bounds (always whole minutes)."""
    moment = dt.datetime.fromtimestamp(epoch_ms // 1000, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class ProcessingClock:
    """The wall clock for `future_timestamp`, read again only when an event seems ahead of it.

    Events are nearly always behind the clock, and the clock moves forward, so a stale reading can
    only raise a doubt, which a fresh reading settles; reading the clock for every event cost ~3 %
    of the core's time."""

    __slots__ = ("ms", "read")

    def __init__(self, read: Callable[[], int] = now_ms) -> None:
        self.read = read
        self.ms = read()

    def refresh(self) -> int:
        self.ms = self.read()
        return self.ms


def stopped_clock() -> ProcessingClock:
    """A processing clock that stays where it is set (`clock.ms = ...`), to judge an event again
    against the moment it reached the broker."""
    clock = ProcessingClock(lambda: 0)
    clock.read = lambda: clock.ms
    return clock
