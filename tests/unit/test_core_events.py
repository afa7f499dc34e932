"""Validation (spec events.md, Rejections): every reason, with the offending field named."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams import config
from streams.core.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from oracle import ev, iso, line, ms, run_engine

NOW = ms("2026-11-22T10:00:00Z")
T = NOW - 60_000


def valid(kind: str = "contact.started", **extra: Any) -> dict[str, Any]:
    """A valid event of each type; `extra` overrides or adds fields."""
    needed: dict[str, dict[str, Any]] = {
        "bot.ended": {"outcome": "resolved"},
        "queue.left": {"reason": "answered"},
        "contact.transferred": {"to": "tier2"},
        "contact.ended": {"resolved": True, "handled_by": "agent"},
        "survey.responded": {"csat": 5},
        "ticket.created": {"ticket_id": "t1"},
        "ticket.resolved": {"ticket_id": "t1"},
    }
    contact = None if kind.startswith("ticket.") else "c1"
    fields = {**needed.get(kind, {}), **extra}
    return ev(kind, fields.pop("ts", T), contact=contact, **fields)


def without(event: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != name}


def outcome(raw: bytes, **kwargs: Any) -> tuple[str, dict[str, Any] | None]:
    """('accepted' | 'duplicate' | 'rejected', the dead letter if any) of one raw event."""
    engine, _, letters = run_engine([raw], clock_ms=NOW, **kwargs)
    result = next(iter(engine.results))
    assert sum(engine.results.values()) == 1
    return result, (letters[0] if letters else None)


def assert_rejected(raw: bytes, reason: str, field: str | None, **kwargs: Any) -> dict[str, Any]:
    result, letter = outcome(raw, **kwargs)
    assert result == "rejected", raw
    assert letter is not None
    assert (letter["reason"], letter["field"]) == (reason, field), letter
    return letter


ALL_TYPES = ["contact.started", "bot.started", "bot.ended", "queue.entered", "queue.left",
             "contact.transferred", "contact.ended", "survey.responded", "ticket.created", "ticket.resolved"]


@pytest.mark.parametrize("kind", ALL_TYPES)
def test_a_valid_event_of_each_type_is_accepted(kind: str) -> None:
    assert outcome(line(valid(kind)))[0] == "accepted"


def test_unknown_extra_fields_and_optional_fields_are_accepted() -> None:
    event = valid("queue.left", visit=2, wait_s=3.5, agent_id="a7", site="Chelyabinsk-1", customer_key="h:abc",
                  something_new={"nested": [1, 2]})
    assert outcome(line(event))[0] == "accepted"


def test_ticket_events_do_not_need_a_contact_id() -> None:
    event = valid("ticket.created")
    assert "contact_id" not in event
    assert outcome(line(event))[0] == "accepted"


# -- malformed ------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    b"{", b"not json", b"", b'{"event_id": "e1",}',
    b'{"event_id": "\xff\xfe", "type": "contact.started"}',  # invalid UTF-8 inside a string
    b"\xc3\x28",
])
def test_not_utf8_json_is_malformed(raw: bytes) -> None:
    assert_rejected(raw, "malformed", None)


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"contact.started"', b"42", b"null", b"true"])
def test_not_an_object_is_malformed(raw: bytes) -> None:
    assert_rejected(raw, "malformed", None)


def _padded(size: int) -> bytes:
    base = line(valid(pad=""))
    raw = line(valid(pad="x" * (size - len(base))))
    assert len(raw) == size
    return raw


def test_larger_than_64_kib_is_malformed_and_64_kib_is_not() -> None:
    assert outcome(_padded(64 * 1024))[0] == "accepted"
    assert_rejected(_padded(64 * 1024 + 1), "malformed", None)


# -- missing_field ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "name"), [
    ("contact.started", "event_id"), ("contact.started", "type"), ("contact.started", "ts"),
    ("contact.started", "contact_id"), ("contact.started", "region"), ("contact.started", "channel"),
    ("queue.entered", "contact_id"), ("bot.ended", "outcome"), ("queue.left", "reason"),
    ("contact.transferred", "to"), ("contact.ended", "resolved"), ("contact.ended", "handled_by"),
    ("ticket.created", "ticket_id"), ("ticket.resolved", "ticket_id"), ("ticket.created", "region"),
])
def test_an_absent_required_field_is_missing_field_named(kind: str, name: str) -> None:
    assert_rejected(line(without(valid(kind), name)), "missing_field", name)


@pytest.mark.parametrize(("kind", "name"), [("contact.started", "event_id"), ("contact.started", "region"),
                                            ("queue.left", "reason"), ("contact.ended", "resolved")])
def test_null_in_a_required_field_counts_as_missing(kind: str, name: str) -> None:
    event = valid(kind)
    event[name] = None
    assert_rejected(line(event), "missing_field", name)


def test_a_survey_without_csat_and_nps_is_missing_a_field() -> None:
    letter = assert_rejected(line(without(valid("survey.responded"), "csat")), "missing_field", "csat")
    assert "nps" in letter["detail"]


@pytest.mark.parametrize("scores", [{"csat": 4}, {"nps": 0}, {"csat": 1, "nps": 10}, {"csat": None, "nps": 7}])
def test_a_survey_with_csat_and_or_nps_is_accepted(scores: dict[str, Any]) -> None:
    event = without(valid("survey.responded"), "csat")
    assert outcome(line({**event, **scores}))[0] == "accepted"


# -- invalid_field ---------------------------------------------------------------------------------

INVALID = [
    ("contact.started", "event_id", 17), ("contact.started", "event_id", ""),
    ("contact.started", "event_id", "x" * 129), ("contact.started", "event_id", ["e1"]),
    ("contact.started", "ts", True), ("contact.started", "ts", 1.7e12), ("contact.started", "ts", "yesterday"),
    ("contact.started", "ts", "2026-11-22T10:00:00"), ("contact.started", "ts", "2026-02-30T10:00:00Z"),
    ("contact.started", "ts", "2026-11-22T25:00:00Z"), ("contact.started", "ts", 1_763_805_600),
    ("contact.started", "ts", {"ms": 1}), ("contact.started", "ts", 946_684_799_999),
    ("contact.started", "ts", 4_102_444_800_000), ("contact.started", "ts", "2100-01-01T00:00:00Z"),
    ("contact.started", "ts", "1999-12-31T23:59:59.999Z"),
    ("contact.started", "contact_id", 5), ("contact.started", "contact_id", ""),
    ("contact.started", "contact_id", "c" * 129),
    ("contact.started", "region", 77), ("contact.started", "channel", "fax"),
    ("contact.started", "channel", "Voice"), ("contact.started", "channel", 1),
    ("contact.started", "site", 5), ("contact.started", "customer_key", ["x"]),
    ("bot.ended", "outcome", "maybe"), ("bot.ended", "outcome", True),
    ("queue.entered", "visit", 0), ("queue.entered", "visit", "1"), ("queue.entered", "visit", 1.5),
    ("queue.entered", "visit", True), ("queue.left", "visit", -1),
    ("queue.left", "reason", "left"), ("queue.left", "wait_s", -1), ("queue.left", "wait_s", "3"),
    ("queue.left", "wait_s", True), ("queue.left", "agent_id", 5),
    ("contact.transferred", "to", "moon"),
    ("contact.ended", "resolved", "yes"), ("contact.ended", "resolved", 1),
    ("contact.ended", "handled_by", "human"), ("contact.ended", "escalated", "no"),
    ("contact.ended", "first_contact", 1), ("contact.ended", "handle_s", -0.1),
    ("contact.ended", "handle_s", "90"),
    ("survey.responded", "csat", 0), ("survey.responded", "csat", 6), ("survey.responded", "csat", 4.5),
    ("survey.responded", "csat", True), ("survey.responded", "nps", -1), ("survey.responded", "nps", 11),
    ("survey.responded", "nps", "9"),
    ("ticket.created", "ticket_id", ""), ("ticket.resolved", "ticket_id", 5),
    ("ticket.created", "contact_id", 5),
]


@pytest.mark.parametrize(("kind", "name", "value"), INVALID)
def test_a_wrong_value_is_invalid_field_named(kind: str, name: str, value: Any) -> None:
    assert_rejected(line(valid(kind, **{name: value})), "invalid_field", name)


@pytest.mark.parametrize("value", [5, ["contact.started"], {"t": 1}, True])
def test_a_type_that_is_not_a_string_is_rejected_not_a_crash(value: Any) -> None:
    """Spec: processing goes on whatever arrives; a non-string `type` is a dead letter naming `type`."""
    result, letter = outcome(line(valid(type=value)))
    assert result == "rejected"
    assert letter is not None and letter["field"] == "type"
    assert letter["reason"] in ("invalid_field", "unknown_type")


@pytest.mark.parametrize("value", [5, 3.5, 1])
def test_numbers_are_accepted_for_seconds_fields(value: float) -> None:
    assert outcome(line(valid("queue.left", wait_s=value)))[0] == "accepted"
    assert outcome(line(valid("contact.ended", handle_s=value)))[0] == "accepted"


def test_site_is_any_string() -> None:
    """The spec types `site`, `customer_key` and `agent_id` as plain strings (no 1-128 bound as on the ids)."""
    assert outcome(line(valid(site="x" * 500)))[0] == "accepted"
    assert outcome(line(valid(site="")))[0] == "accepted"


@pytest.mark.parametrize("ts", ["2026-11-22T09:59:00Z", "2026-11-22T12:59:00+03:00", "2026-11-22T21:59:00+12:00",
                                "2026-11-22T08:59:00.000-01:00", "2026-11-22T09:59:00.000Z"])
def test_rfc3339_with_offsets_and_epoch_ms_name_the_same_instant(ts: str) -> None:
    engine, _, _ = run_engine([valid(ts=ts)], clock_ms=NOW)
    assert engine.results["accepted"] == 1
    assert engine.watermark.value == T


def test_epoch_ms_integer_ts_is_accepted() -> None:
    engine, _, _ = run_engine([valid(ts=T)], clock_ms=NOW)
    assert engine.watermark.value == T


# -- unknown_type, unknown_region, future_timestamp -----------------------------------------------------

@pytest.mark.parametrize("kind", ["contact.paused", "Contact.Started", "", "ticket.reopened"])
def test_an_unknown_type_is_unknown_type(kind: str) -> None:
    assert_rejected(line(valid(type=kind)), "unknown_type", "type")


@pytest.mark.parametrize("region", ["RU-XXX", "US-CA", "ru-mow", "", "MOW"])
def test_a_region_outside_the_catalogue_is_unknown_region(region: str) -> None:
    assert_rejected(line(valid(region=region)), "unknown_region", "region")


def test_a_deployment_restricted_catalogue_rejects_other_regions() -> None:
    from oracle import default_settings

    settings = default_settings(CCPULSE_PIPELINE__REGIONS="RU-MOW,RU-CHE")
    assert outcome(line(valid(region="RU-CHE")), settings=settings)[0] == "accepted"
    assert_rejected(line(valid(region="RU-SPE")), "unknown_region", "region", settings=settings)


def test_more_than_5_minutes_after_the_clock_is_future_timestamp() -> None:
    tolerance = 5 * 60_000
    assert outcome(line(valid(ts=NOW + tolerance)))[0] == "accepted"
    assert outcome(line(valid(ts=iso(NOW + tolerance, 3))))[0] == "accepted"
    assert_rejected(line(valid(ts=NOW + tolerance + 1)), "future_timestamp", "ts")
    assert_rejected(line(valid(ts=iso(NOW + 3_600_000, 12))), "future_timestamp", "ts")


def test_the_clock_is_read_again_before_an_event_is_called_future() -> None:
    """The engine keeps its last clock reading; an event ahead of that reading but not of the
    clock now is accepted, one ahead of the clock now is still rejected."""
    now = [NOW]
    engine = Engine(config.load(env={}), clock=lambda: now[0])
    engine.process_raw(line(valid(ts=NOW - 1_000)))
    now[0] = NOW + 3_600_000  # an hour passes
    engine.process_raw(line(valid(ts=NOW + 3_600_000, contact_id="c2", event_id="e2")))
    engine.process_raw(line(valid(ts=NOW + 3_600_000 + 5 * 60_000 + 1, contact_id="c3", event_id="e3")))
    assert (engine.accepted, dict(engine.rejections)) == (2, {"future_timestamp": 1})


# -- dead letters ------------------------------------------------------------------------------------

def test_a_dead_letter_has_the_spec_shape_and_the_original_bytes() -> None:
    raw = line(valid(region="RU-XXX"))
    letter = assert_rejected(raw, "unknown_region", "region")
    assert list(letter) == ["reason", "field", "detail", "rejected_at", "raw"]
    assert letter["raw"] == raw.decode()
    assert isinstance(letter["detail"], str) and letter["detail"] and "\n" not in letter["detail"]
    assert letter["rejected_at"].endswith("Z")
    assert ms(letter["rejected_at"]) == NOW
    orjson.dumps(letter)


def test_a_dead_letter_keeps_undecodable_bytes_escaped() -> None:
    raw = b'{"event_id": "\xff\x80 bad"}'
    letter = assert_rejected(raw, "malformed", None)
    assert isinstance(letter["raw"], str)
    assert "\\xff\\x80 bad" in letter["raw"]
    assert letter["raw"].startswith('{"event_id": "')


def test_rejections_are_counted_by_reason_and_processing_goes_on() -> None:
    raws = [b"{", line(valid(region="RU-XXX")), line(valid(type="nope")), line(without(valid(), "ts")),
            line(valid("bot.ended", outcome="x")), line(valid(ts=NOW + 3_600_000)), line(valid())]
    engine, _, letters = run_engine(raws, clock_ms=NOW)
    assert engine.results == {"rejected": 6, "accepted": 1}
    assert dict(engine.rejections) == {"malformed": 1, "unknown_region": 1, "unknown_type": 1, "missing_field": 1,
                                       "invalid_field": 1, "future_timestamp": 1}
    assert len(letters) == 6
