"""Invalid events for the ``malformed`` scenario, one of each rejection reason of the spec in turn.

Each invalid event is sent in addition to a valid one and derived from it, so the valid stream
stays intact and every dead letter can be traced to the event it imitates. ``too_late`` is
left out: it depends on the consumer's watermark, not on the bytes (the ``late`` scenario covers it).
"""

from __future__ import annotations

import random
from typing import Any

import orjson

from streams.core.timefmt import format_ms, parse_rfc3339

#: the spec's reason codes that a single event can provoke, in the order they are injected
KINDS = ("malformed", "not_object", "missing_field", "invalid_field", "unknown_type", "unknown_region",
         "future_timestamp", "conflict")
#: kind -> reason code the pipeline must give
REASONS = {"malformed": "malformed", "not_object": "malformed", "missing_field": "missing_field",
           "invalid_field": "invalid_field", "unknown_type": "unknown_type",
           "unknown_region": "unknown_region", "future_timestamp": "future_timestamp",
           "conflict": "conflict"}
#: types whose second, different occurrence is a conflict, and how to make it different
_CONFLICTS = {
    "queue.left": lambda e: {"reason": "abandoned" if e["reason"] == "answered" else "answered"},
    "contact.ended": lambda e: {"resolved": not e["resolved"]},
    "bot.ended": lambda e: {"outcome": "handoff" if e["outcome"] != "handoff" else "resolved"},
}
_REQUIRED = ("event_id", "type", "ts", "region", "channel")
_INVALID: tuple[tuple[str, Any], ...] = (("channel", "fax"), ("ts", "yesterday"), ("event_id", ""),
                                          ("region", 77), ("ts", True))
#: future_timestamp events keep their time of day but move to 2098: in the future for any
#: processing clock, yet inside the years a validator may accept as well-formed (2000-2099)
FUTURE_DAY_MS = parse_rfc3339("2098-01-01T00:00:00Z")
DAY_MS = 86_400_000


class MalformedInjector:
    """Decides after each valid event whether to add an invalid one, cycling through ``KINDS``."""

    def __init__(self, share: float, rng: random.Random) -> None:
        self.share = share
        self._rng = rng
        self._next = 0
        self._made = 0
        self.counts: dict[str, int] = dict.fromkeys(KINDS, 0)

    def after(self, event: dict[str, Any], value: bytes) -> list[bytes]:
        """Zero or one invalid value to send after ``event`` (whose bytes are ``value``)."""
        if self._rng.random() >= self.share:
            return []
        kind = KINDS[self._next % len(KINDS)]
        if kind == "conflict" and event["type"] not in _CONFLICTS:
            return []  # wait for an event that can have a conflicting twin
        self._next += 1
        self._made += 1
        self.counts[kind] += 1
        return [self._make(kind, event, value)]

    def _make(self, kind: str, event: dict[str, Any], value: bytes) -> bytes:
        bad = dict(event, event_id=f"{event['event_id']}~bad{self._made}")
        pick = self._made // len(KINDS)
        if kind == "malformed":
            return value[: len(value) // 2] if pick % 2 else b"\xff\xfe" + value
        if kind == "not_object":
            return orjson.dumps([bad])
        if kind == "missing_field":
            del bad[_REQUIRED[pick % len(_REQUIRED)]]
        elif kind == "invalid_field":
            field, wrong = _INVALID[pick % len(_INVALID)]
            bad[field] = wrong
        elif kind == "unknown_type":
            bad["type"] = "contact.paused"
        elif kind == "unknown_region":
            bad["region"] = "RU-XYZ" if pick % 2 else "UA-43"
        elif kind == "future_timestamp":
            bad["ts"] = format_ms(FUTURE_DAY_MS + parse_rfc3339(event["ts"]) % DAY_MS)
        else:
            ts = parse_rfc3339(event["ts"]) + 1000
            bad.update(_CONFLICTS[event["type"]](event), ts=format_ms(ts))
            bad.pop("wait_s", None)
        return orjson.dumps(bad)
