"""The two decoding paths agree: msgspec's typed path never accepts what the precise checks reject.

`events.decode` tries msgspec first and falls back to the field-by-field checks (orjson's reading
of the input) on anything it does not accept. So the typed path may be stricter, never laxer, and
what it accepts must carry exactly the values the precise path would build: the same types too,
since an int and a float wait round differently.
"""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core import events
from streams.core.events import EVENT_CLASSES, Event, Rejected, _checked, decode
from streams.core.timefmt import MAX_EPOCH_MS, ProcessingClock
from streams.regions import catalogue

REGIONS = frozenset(catalogue())
#: a processing clock past every timestamp the events may carry: `future_timestamp` never decides here
LATEST = ProcessingClock(lambda: MAX_EPOCH_MS)

BASE: dict[str, Any] = {"event_id": "e1", "ts": "2026-11-21T03:28:57.390Z", "contact_id": "c1",
                        "region": "RU-MOW", "channel": "voice"}
NEEDED: dict[str, dict[str, Any]] = {
    "bot.ended": {"outcome": "resolved"},
    "queue.entered": {"visit": 2},
    "queue.left": {"reason": "answered", "visit": 1, "wait_s": 3.5, "agent_id": "a1"},
    "contact.transferred": {"to": "tier2"},
    "contact.ended": {"resolved": True, "handled_by": "agent", "escalated": False, "first_contact": True,
                      "handle_s": 90},
    "survey.responded": {"csat": 5, "nps": 9},
    "ticket.created": {"ticket_id": "t1"},
    "ticket.resolved": {"ticket_id": "t1"},
}


def fields_of(kind: str) -> list[tuple[str, Any]]:
    return [("type", kind), *BASE.items(), *NEEDED.get(kind, {}).items()]


def encode(pairs: list[tuple[str, Any]], ascii_only: bool = True) -> bytes:
    """A JSON object from key/value pairs, so keys may repeat and integers may exceed 64 bits."""
    body = ",".join(f"{json.dumps(key, ensure_ascii=ascii_only)}:{json.dumps(value, ensure_ascii=ascii_only)}"
                    for key, value in pairs)
    return ("{" + body + "}").encode()


class Declined(Exception):
    """Raised in place of the precise path: the typed path did not accept the event."""


def typed(raw: bytes) -> Event | None:
    """What `decode`'s typed path makes of an event, or None when it leaves it to the precise path."""
    with mock.patch.object(events, "_checked", side_effect=Declined):
        try:
            return decode(raw, REGIONS, LATEST, 0)
        except Declined:
            return None


def typed_values(event: Event) -> list[tuple[type, Any]]:
    return [(type(event), None)] + [(type(value), value) for value in msgspec.structs.astuple(event)]


def assert_agree(raw: bytes) -> bool:
    """The typed path's event equals the precise path's, or the typed path declines; True if typed."""
    typed_event = typed(raw)
    if typed_event is None:
        return False
    try:
        checked = _checked(raw, REGIONS)
    except Rejected as rejection:  # pragma: no cover - the failure this test exists for
        pytest.fail(f"typed path accepted what the precise path rejects ({rejection.reason}): {raw!r}")
    assert typed_values(typed_event) == typed_values(checked), raw
    return True


@pytest.mark.parametrize("kind", sorted(EVENT_CLASSES))
def test_a_plain_valid_event_of_each_type_takes_the_typed_path(kind: str) -> None:
    assert assert_agree(encode(fields_of(kind)))


@pytest.mark.parametrize("tail", [
    b',"x":"\\ud800"', b',"reason":"zzz"', b',"re\\u0061son":"abandoned"', b',"visit":1.0', b',"visit":-0',
    b',"visit":99999999999999999999999', b',"wait_s":99999999999999999999999', b',"wait_s":18446744073709551615',
    b',"wait_s":-0.0', b',"wait_s":1.5e-400', b',"type":"contact.started"', b',"x":' + b"[" * 1100 + b"]" * 1100,
    b',"site":"\\u0436"', b',"site":"\xd0\xb6"', b',"site":"\xff"', b',"site":"\xed\xa0\x80"',
    b',"x":"\xff"', b',"x":1e400', b',"x":[-1e999]', b',"x":' + b"1" * 400,
])
def test_odd_inputs_are_read_alike_or_left_to_the_precise_path(tail: bytes) -> None:
    raw = encode(fields_of("queue.left"))
    assert_agree(raw[:-1] + tail + b"}")


@pytest.mark.parametrize("extra", [b'"note":"hi"', b'"agent_id":"a1"', b'"x":1e400'])
def test_an_event_with_a_field_its_type_does_not_define_takes_the_precise_path(extra: bytes) -> None:
    """msgspec skips unknown fields unread (it would let `1e400` through, which orjson rejects)."""
    raw = encode(fields_of("contact.started"))[:-1] + b"," + extra + b"}"
    assert typed(raw) is None


#: values just inside and just outside what each field accepts, as JSON can carry them
NEAR_MISSES: dict[str, list[Any]] = {
    "event_id": ["", "x" * 128, "x" * 129, "\u0436" * 128, "\U0001f600" * 129, 17, None],
    "ts": [946_684_800_000, 946_684_799_999, 4_102_444_799_999, 4_102_444_800_000, 1.7e12, 1_763_805_600_000.0,
           True, "2026-11-21T03:28:57Z", "2026-11-21T03:28:60.5+03:00", "2026-11-21T03:28:57.1234567890Z",
           "2026-02-30T00:00:00Z", "2026-11-21T03:28:57", "2099-12-31T23:59:59.999Z", "2100-01-01T00:00:00Z"],
    "region": ["RU-MOW", "RU-XXX", "ru-mow", "", 77],
    "channel": ["voice_assistant", "Voice", "fax", ""],
    "site": ["", "\u0436", 5], "customer_key": ["", 5], "agent_id": ["", 5],
    "outcome": ["handoff", "maybe"], "reason": ["callback", "left", True], "to": ["external", "moon"],
    "visit": [1, 0, -1, 2**63 - 1, 2**63, 2**64, 1.0, "1", True],
    "wait_s": [0, -0.0, 0.0, -1, 1e-9, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**70, 1e308, "3", True],
    "handle_s": [0, -0.1, 2**64, 1e300, "90", False],
    "resolved": [False, 1, "yes"], "handled_by": ["none", "human"], "escalated": [True, "no", 0],
    "first_contact": [False, 1], "csat": [1, 0, 5, 6, 4.5, True], "nps": [0, 10, 11, -1, "9"],
    "ticket_id": ["t" * 128, "t" * 129, "", 5], "contact_id": ["c" * 128, "c" * 129, "", 5],
    "type": ["contact.paused", "Contact.Started", 5, ["bot.started"]],
}


@pytest.mark.parametrize("kind", sorted(EVENT_CLASSES))
def test_each_near_miss_of_each_field_is_read_alike_or_left_to_the_precise_path(kind: str) -> None:
    for name, values in NEAR_MISSES.items():
        for value in values:
            assert_agree(encode([*fields_of(kind), (name, value)], ascii_only=False))


ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.integers(-3, 12),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5), st.text(min_size=120, max_size=140),
    st.text(alphabet="ab\u0436\U0001f600", max_size=130),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
CHANGES = st.sampled_from(sorted(NEAR_MISSES)).flatmap(
    lambda name: st.tuples(st.just(name), st.one_of(st.sampled_from(NEAR_MISSES[name]), ODD_VALUES)))


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(sorted(EVENT_CLASSES)), changes=st.lists(CHANGES, max_size=3),
       dropped=st.sets(st.sampled_from(sorted(NEAR_MISSES)), max_size=2), ascii_only=st.booleans())
def test_typed_decoding_never_accepts_more_nor_reads_differently(kind: str, changes: list[tuple[str, Any]],
                                                                 dropped: set[str], ascii_only: bool) -> None:
    pairs = [(name, value) for name, value in fields_of(kind) if name not in dropped] + changes
    assert_agree(encode(pairs, ascii_only))
