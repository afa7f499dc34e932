"""Decoding and validation of channel events (spec: events.md).

`decode` turns raw bytes into an `Event` or raises `Rejected` naming the reason and the field.
Only stateless checks live here; `duplicate`, `conflict` and `too_late` need state and are
decided by the tracker.
"""

from __future__ import annotations

import math
from collections.abc import Container
from typing import Any

import orjson

from streams.core.timefmt import MAX_EPOCH_MS, MIN_EPOCH_MS, parse_rfc3339

MAX_EVENT_BYTES = 64 * 1024
MAX_ID_CHARS = 128

CHANNELS = frozenset({"voice", "chat", "messenger", "email", "social", "app", "voice_assistant"})
TICKET_TYPES = frozenset({"ticket.created", "ticket.resolved"})
EVENT_TYPES = frozenset({
    "contact.started", "bot.started", "bot.ended", "queue.entered", "queue.left",
    "contact.transferred", "contact.ended", "survey.responded", *TICKET_TYPES,
})
BOT_OUTCOMES = frozenset({"resolved", "handoff", "abandoned"})
LEAVE_REASONS = frozenset({"answered", "abandoned", "transferred", "callback", "timeout"})
TRANSFER_TARGETS = frozenset({"tier2", "queue", "external"})
HANDLERS = frozenset({"bot", "agent", "none"})

#: rejection reasons, in the order of the spec's table
REASONS = ("malformed", "missing_field", "invalid_field", "unknown_type", "unknown_region",
           "future_timestamp", "too_late", "conflict")


class Rejected(Exception):
    """An event that cannot be accepted; becomes a dead letter, never a crash."""

    def __init__(self, reason: str, field: str | None, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.field = field
        self.detail = detail


class Event:
    """A validated event. `key` is the contact id, or the ticket id for ticket events."""

    __slots__ = ("body", "channel", "event_id", "key", "region", "ts", "type")

    def __init__(self, body: dict[str, Any], ts: int) -> None:
        self.body = body
        self.event_id: str = body["event_id"]
        self.type: str = body["type"]
        self.ts = ts
        self.region: str = body["region"]
        self.channel: str = body["channel"]
        self.key: str = body["ticket_id" if self.type in TICKET_TYPES else "contact_id"]

    def __repr__(self) -> str:
        return f"Event({self.type} {self.event_id} {self.key} {self.region}/{self.channel} ts={self.ts})"


def decode(raw: bytes, regions: Container[str], now_ms: int, future_tolerance_ms: int) -> Event:
    """Validate one raw event; `now_ms` is the processing clock used for `future_timestamp`."""
    if len(raw) > MAX_EVENT_BYTES:
        raise Rejected("malformed", None, f"event is {len(raw)} bytes, larger than 64 KiB")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Rejected("malformed", None, f"not UTF-8 JSON: {exc}") from None
    if type(body) is not dict:
        raise Rejected("malformed", None, f"not a JSON object but {_json_kind(body)}")
    ts = _fast_envelope(body, regions)
    if ts is None:
        ts = _envelope(body, regions)
    _CHECKS[body["type"]](body)
    if ts > now_ms + future_tolerance_ms:
        raise Rejected("future_timestamp", "ts",
                       f"ts is {(ts - now_ms) / 1000:.0f} s after the processing clock "
                       f"(tolerance {future_tolerance_ms // 1000} s)")
    return Event(body, ts)


def _fast_envelope(body: dict[str, Any], regions: Container[str]) -> int | None:
    """The event time when the envelope is plainly valid, else None (then `_envelope` decides,
    with the precise reason). Cheap checks for the common case: this is the hot path."""
    event_id = body.get("event_id")
    kind = body.get("type")
    region = body.get("region")
    channel = body.get("channel")
    if not (type(event_id) is str and 0 < len(event_id) <= MAX_ID_CHARS and type(kind) is str
            and type(region) is str and type(channel) is str and kind in EVENT_TYPES
            and region in regions and channel in CHANNELS):
        return None
    key = body.get("ticket_id" if kind in TICKET_TYPES else "contact_id")
    if not (type(key) is str and 0 < len(key) <= MAX_ID_CHARS):
        return None
    if kind in TICKET_TYPES and "contact_id" in body:
        return None
    site, customer = body.get("site"), body.get("customer_key")
    if (site is not None and type(site) is not str) or (customer is not None and type(customer) is not str):
        return None
    ts = body.get("ts")
    if type(ts) is str:
        try:
            ts = parse_rfc3339(ts)
        except ValueError:
            return None
    elif type(ts) is not int:
        return None
    return ts if MIN_EPOCH_MS <= ts < MAX_EPOCH_MS else None


def _envelope(body: dict[str, Any], regions: Container[str]) -> int:
    """Check the envelope field by field, raising the first problem in the spec's terms."""
    _string(body, "event_id")
    kind = body.get("type")
    if kind is None:
        raise Rejected("missing_field", "type", "field 'type' is required")
    if type(kind) is not str:
        raise Rejected("invalid_field", "type", f"'type' must be a string, got {_json_kind(kind)}")
    if kind not in EVENT_TYPES:
        raise Rejected("unknown_type", "type", f"unknown event type {kind!r}")
    ts = _timestamp(body)
    if kind in TICKET_TYPES:
        _string(body, "ticket_id")
        _string(body, "contact_id", required=False)
    else:
        _string(body, "contact_id")
    region = body.get("region")
    if region is None:
        raise Rejected("missing_field", "region", "field 'region' is required")
    if type(region) is not str:
        raise Rejected("invalid_field", "region", f"'region' must be a string, got {_json_kind(region)}")
    if region not in regions:
        raise Rejected("unknown_region", "region", f"region {region!r} is not in the region catalogue")
    _enum(body, "channel", CHANNELS)
    _free_text(body, "site")
    _free_text(body, "customer_key")
    return ts


def _json_kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _string(body: dict[str, Any], field: str, required: bool = True, limit: int = MAX_ID_CHARS) -> None:
    value = body.get(field)
    if value is None:
        if required:
            raise Rejected("missing_field", field, f"field {field!r} is required")
        return
    if type(value) is not str:
        raise Rejected("invalid_field", field, f"{field!r} must be a string, got {_json_kind(value)}")
    if not value or len(value) > limit:
        raise Rejected("invalid_field", field, f"{field!r} must have 1 to {limit} characters")


def _free_text(body: dict[str, Any], field: str) -> None:
    """Optional opaque strings (site, customer_key, agent_id): any string, even empty."""
    value = body.get(field)
    if value is not None and type(value) is not str:
        raise Rejected("invalid_field", field, f"{field!r} must be a string, got {_json_kind(value)}")


def _enum(body: dict[str, Any], field: str, allowed: frozenset[str], required: bool = True) -> None:
    value = body.get(field)
    if value is None:
        if required:
            raise Rejected("missing_field", field, f"field {field!r} is required")
        return
    if type(value) is not str or value not in allowed:
        raise Rejected("invalid_field", field,
                       f"{field!r} must be one of {', '.join(sorted(allowed))}, got {value!r}")


def _timestamp(body: dict[str, Any]) -> int:
    value = body.get("ts")
    if value is None:
        raise Rejected("missing_field", "ts", "field 'ts' is required")
    if type(value) is str:
        try:
            ts = parse_rfc3339(value)
        except ValueError as exc:
            raise Rejected("invalid_field", "ts", f"'ts' {value!r}: {exc}") from None
    elif type(value) is int:
        ts = value
    else:
        raise Rejected("invalid_field", "ts", "'ts' must be an RFC 3339 string or integer epoch milliseconds")
    if not MIN_EPOCH_MS <= ts < MAX_EPOCH_MS:
        raise Rejected("invalid_field", "ts", f"'ts' {value!r} is outside the years 2000-2099")
    return ts


def _visit(body: dict[str, Any]) -> None:
    visit = body.get("visit", 1)
    if type(visit) is not int or visit < 1:
        raise Rejected("invalid_field", "visit", f"'visit' must be an integer >= 1, got {visit!r}")


def _seconds(body: dict[str, Any], field: str) -> None:
    value = body.get(field)
    if value is None:
        return
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise Rejected("invalid_field", field, f"{field!r} must be a number >= 0, got {value!r}")


def _boolean(body: dict[str, Any], field: str, required: bool) -> None:
    value = body.get(field)
    if value is None:
        if required:
            raise Rejected("missing_field", field, f"field {field!r} is required")
        return
    if type(value) is not bool:
        raise Rejected("invalid_field", field, f"{field!r} must be true or false, got {value!r}")


def _score(body: dict[str, Any], field: str, low: int, high: int) -> bool:
    value = body.get(field)
    if value is None:
        return False
    if type(value) is not int or not low <= value <= high:
        raise Rejected("invalid_field", field, f"{field!r} must be an integer {low}-{high}, got {value!r}")
    return True


def _check_nothing(body: dict[str, Any]) -> None:
    """contact.started, bot.started and the ticket events have no extra fields to check."""


def _check_bot_ended(body: dict[str, Any]) -> None:
    _enum(body, "outcome", BOT_OUTCOMES)


def _check_queue_left(body: dict[str, Any]) -> None:
    _enum(body, "reason", LEAVE_REASONS)
    _visit(body)
    _seconds(body, "wait_s")
    _free_text(body, "agent_id")


def _check_transferred(body: dict[str, Any]) -> None:
    _enum(body, "to", TRANSFER_TARGETS)


def _check_ended(body: dict[str, Any]) -> None:
    _boolean(body, "resolved", required=True)
    _enum(body, "handled_by", HANDLERS)
    _boolean(body, "escalated", required=False)
    _boolean(body, "first_contact", required=False)
    _seconds(body, "handle_s")


def _check_survey(body: dict[str, Any]) -> None:
    has_csat = _score(body, "csat", 1, 5)
    has_nps = _score(body, "nps", 0, 10)
    if not (has_csat or has_nps):
        raise Rejected("missing_field", "csat", "a survey needs 'csat' and/or 'nps'")


_CHECKS = {
    "contact.started": _check_nothing,
    "bot.started": _check_nothing,
    "bot.ended": _check_bot_ended,
    "queue.entered": _visit,
    "queue.left": _check_queue_left,
    "contact.transferred": _check_transferred,
    "contact.ended": _check_ended,
    "survey.responded": _check_survey,
    "ticket.created": _check_nothing,
    "ticket.resolved": _check_nothing,
}
