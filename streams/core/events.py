"""Decoding and validation of channel events (spec: events.md).

`decode` turns raw bytes into an `Event` or raises `Rejected` naming the reason and the field.
Only stateless checks live here; `duplicate`, `conflict` and `too_late` need state and are
decided by the tracker.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Annotated, Any, ClassVar, Literal

import msgspec
import orjson

from streams.core.timefmt import MAX_EPOCH_MS, MIN_EPOCH_MS, ProcessingClock, parse_rfc3339

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


Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_CHARS)]
#: orjson reads integers beyond 64 bits as floats, which the precise checks treat otherwise, so larger
#: integers are left to them (msgspec's bounds stop at int64)
INT64_MAX = 2**63 - 1
Count = Annotated[int, msgspec.Meta(ge=1, le=INT64_MAX)]
Seconds = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)] | Annotated[float, msgspec.Meta(ge=0)] | None


class Event(msgspec.Struct, tag_field="type", kw_only=True, forbid_unknown_fields=True, gc=False):
    """A validated event: one subclass per type, decoded straight from JSON by msgspec.

    `ts` is epoch milliseconds once `decode` returns (the wire may carry an RFC 3339 string).
    Unknown fields are allowed by the spec, but msgspec would skip them unread (it accepts an
    overflowing number there, which orjson rejects), so such events take the precise path.
    Not tracked by the garbage collector: an event holds only strings and numbers."""

    type: ClassVar[str]
    ticket: ClassVar[bool] = False

    event_id: Id
    ts: int | str
    region: str
    channel: Literal[tuple(sorted(CHANNELS))]
    site: str | None = None
    customer_key: str | None = None

    @property
    def key(self) -> str:
        """The contact id, or the ticket id for ticket events: what the event's state is kept under."""
        return self.contact_id  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"Event({self.type} {self.event_id} {self.key} {self.region}/{self.channel} ts={self.ts})"


class ContactEvent(Event, kw_only=True):
    contact_id: Id


class ContactStarted(ContactEvent, tag="contact.started"):
    pass


class BotStarted(ContactEvent, tag="bot.started"):
    pass


class BotEnded(ContactEvent, tag="bot.ended"):
    outcome: Literal[tuple(sorted(BOT_OUTCOMES))]


class QueueEntered(ContactEvent, tag="queue.entered"):
    visit: Count = 1


class QueueLeft(ContactEvent, tag="queue.left"):
    reason: Literal[tuple(sorted(LEAVE_REASONS))]
    visit: Count = 1
    wait_s: Seconds = None
    agent_id: str | None = None


class ContactTransferred(ContactEvent, tag="contact.transferred"):
    to: Literal[tuple(sorted(TRANSFER_TARGETS))]


class ContactEnded(ContactEvent, tag="contact.ended"):
    resolved: bool
    handled_by: Literal[tuple(sorted(HANDLERS))]
    escalated: bool | None = False
    first_contact: bool | None = None
    handle_s: Seconds = None


class SurveyResponded(ContactEvent, tag="survey.responded"):
    csat: Annotated[int, msgspec.Meta(ge=1, le=5)] | None = None
    nps: Annotated[int, msgspec.Meta(ge=0, le=10)] | None = None

    def __post_init__(self) -> None:
        if self.csat is None and self.nps is None:
            raise ValueError("a survey needs 'csat' and/or 'nps'")


class TicketEvent(Event, kw_only=True):
    ticket: ClassVar[bool] = True
    ticket_id: Id
    contact_id: Id | None = None

    @property
    def key(self) -> str:
        return self.ticket_id


class TicketCreated(TicketEvent, tag="ticket.created"):
    pass


class TicketResolved(TicketEvent, tag="ticket.resolved"):
    pass


AnyEvent = (ContactStarted | BotStarted | BotEnded | QueueEntered | QueueLeft | ContactTransferred | ContactEnded
            | SurveyResponded | TicketCreated | TicketResolved)
EVENT_CLASSES: dict[str, type[Event]] = {cls.__struct_config__.tag: cls for cls in AnyEvent.__args__}
for _kind, _cls in EVENT_CLASSES.items():
    _cls.type = _kind
_DECODER = msgspec.json.Decoder(AnyEvent)


def decode(raw: bytes, regions: Container[str], clock: ProcessingClock, future_tolerance_ms: int) -> Event:
    """Validate one raw event; `clock` is the processing clock used for `future_timestamp`.

    The hot path is msgspec's typed decoding plus the few checks it cannot express (the timestamp's
    range, the region catalogue), in this one function since a Python call per event costs more
    than those checks. Anything it does not accept goes to `_checked`, which names the precise reason.
    msgspec's errors and a timestamp's are ValueErrors (msgspec lets the codec's error through)."""
    if len(raw) > MAX_EVENT_BYTES:
        raise Rejected("malformed", None, f"event is {len(raw)} bytes, larger than 64 KiB")
    try:
        event: Event | None = _DECODER.decode(raw)
        ts = event.ts  # type: ignore[union-attr]
        if type(ts) is str:
            ts = event.ts = parse_rfc3339(ts)  # type: ignore[union-attr]
    except ValueError:
        event = None
    if event is None or not MIN_EPOCH_MS <= ts < MAX_EPOCH_MS or event.region not in regions:
        event = _checked(raw, regions)
        ts = event.ts
    if ts > clock.ms + future_tolerance_ms and ts > clock.refresh() + future_tolerance_ms:
        raise Rejected("future_timestamp", "ts",
                       f"ts is {(ts - clock.ms) / 1000:.0f} s after the processing clock "
                       f"(tolerance {future_tolerance_ms // 1000} s)")
    return event


def _checked(raw: bytes, regions: Container[str]) -> Event:
    """Check field by field with orjson's reading of the input, raising the first problem in the
    spec's terms; an event that passes is built without a second validation."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Rejected("malformed", None, f"not UTF-8 JSON: {exc}") from None
    if type(body) is not dict:
        raise Rejected("malformed", None, f"not a JSON object but {_json_kind(body)}")
    ts = _envelope(body, regions)
    _CHECKS[body["type"]](body)
    cls = EVENT_CLASSES[body["type"]]
    fields = {name: body[name] for name in cls.__struct_fields__ if name in body}
    fields["ts"] = ts
    return cls(**fields)


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
    if type(value) not in (int, float) or value < 0:  # orjson reads no NaN nor infinity: they are malformed
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
