"""Per-contact state: duplicates, conflicts, too_late, pairing in either order, several visits,
handle time and tickets (spec: events.md Pairing rules, metrics.md Attribution)."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from oracle import default_settings, ev, line, ms, run_engine

T = ms("2026-11-22T10:00:00Z")
S = 1000
MIN = 60_000
H = 3_600_000


def at(seconds: float) -> int:
    return T + round(seconds * 1000)


def rec(records: dict[tuple[str, str, str], dict[str, Any]], window: str = "60m",
        region: str = "RU-MOW", channel: str = "voice") -> dict[str, Any]:
    return records[(region, channel, window)]


# -- duplicates --------------------------------------------------------------------------------

def test_a_repeated_event_id_is_dropped_and_counted_not_dead_lettered() -> None:
    started = ev("contact.started", at(0), event_id="x1")
    engine, records, letters = run_engine([started, started, dict(started)])
    assert engine.results == {"accepted": 1, "duplicate": 2}
    assert letters == []
    assert rec(records)["contacts"] == 1


def test_a_repeated_event_id_is_a_duplicate_even_with_another_body() -> None:
    first = ev("queue.left", at(10), event_id="x1", reason="answered", wait_s=3)
    again = dict(first, reason="abandoned", wait_s=1)
    engine, records, letters = run_engine([first, again])
    assert engine.results["duplicate"] == 1 and letters == []
    assert (rec(records)["answered"], rec(records)["abandoned"]) == (1, 0)


def test_event_ids_are_unique_per_contact() -> None:
    """A re-sent event carries its contact, so the pipeline looks for duplicates among the events
    of the same contact (or ticket): that is what a stream partitioned by contact can check without
    a global id index. The same id on another contact is a different event (documented in the
    README as a reading of events.md)."""
    engine, records, _ = run_engine([ev("contact.started", at(0), contact="a", event_id="same"),
                                     ev("contact.started", at(1), contact="b", event_id="same"),
                                     ev("contact.started", at(1), contact="b", event_id="same")])
    assert engine.results == {"accepted": 2, "duplicate": 1}
    assert rec(records)["contacts"] == 2


# -- conflicts ---------------------------------------------------------------------------------

CONFLICTS = [
    ("start", ev("contact.started", at(0)), ev("contact.started", at(1)), "contacts"),
    ("bot end", ev("bot.ended", at(0), outcome="resolved"), ev("bot.ended", at(1), outcome="handoff"),
     "bot_sessions"),
    ("survey", ev("survey.responded", at(0), csat=5), ev("survey.responded", at(1), csat=1), "csat_responses"),
    ("queue entry", ev("queue.entered", at(0)), ev("queue.entered", at(1), visit=1), "offered"),
    ("queue leave", ev("queue.left", at(0), reason="answered", wait_s=2),
     ev("queue.left", at(1), reason="abandoned", wait_s=9), "answered"),
    ("end", ev("contact.ended", at(0), resolved=True, handled_by="agent"),
     ev("contact.ended", at(1), resolved=False, handled_by="bot"), "ended"),
    ("ticket creation", ev("ticket.created", at(0), contact=None, ticket_id="t1"),
     ev("ticket.created", at(1), contact=None, ticket_id="t1"), "tickets_created"),
]


@pytest.mark.parametrize(("what", "first", "second", "count"), CONFLICTS, ids=[c[0] for c in CONFLICTS])
def test_a_second_different_event_for_a_slot_is_a_conflict(what: str, first: dict[str, Any],
                                                           second: dict[str, Any], count: str) -> None:
    engine, records, letters = run_engine([first, second, second])
    assert engine.results == {"accepted": 1, "rejected": 1, "duplicate": 1}, what
    assert [(letter["reason"], letter["raw"]) for letter in letters] == [("conflict", line(second).decode())]
    assert rec(records)[count] == 1


def test_a_second_ticket_resolution_is_a_conflict_and_counts_once() -> None:
    created = ev("ticket.created", at(0), contact=None, ticket_id="t1")
    resolved = [ev("ticket.resolved", at(60 * m), contact=None, ticket_id="t1") for m in (10, 20)]
    _, records, letters = run_engine([created, *resolved])
    assert [letter["reason"] for letter in letters] == ["conflict"]
    assert rec(records, "today")["tickets_resolved"] == 1


def test_different_visits_and_different_contacts_do_not_conflict() -> None:
    events = [ev("queue.left", at(5), reason="answered", wait_s=1),
              ev("queue.left", at(6), reason="answered", wait_s=1, visit=2),
              ev("queue.left", at(7), contact="c2", reason="answered", wait_s=1),
              ev("survey.responded", at(8), contact="c2", nps=10)]
    engine, records, letters = run_engine(events)
    assert letters == [] and engine.results == {"accepted": 4}
    assert rec(records)["answered"] == 3


def test_visit_defaults_to_1() -> None:
    _, _, letters = run_engine([ev("queue.entered", at(0)), ev("queue.entered", at(1), visit=1)])
    assert [letter["reason"] for letter in letters] == ["conflict"]


# -- too_late ----------------------------------------------------------------------------------

def test_older_than_watermark_minus_26h_is_too_late_when_enabled() -> None:
    horizon = 26 * H
    events = [ev("contact.started", at(0), contact="a"),
              ev("contact.started", T + horizon + MIN, contact="b"),
              ev("contact.started", T + MIN, contact="c"),       # exactly watermark - horizon: accepted
              ev("contact.started", T + MIN - 1, contact="d")]   # 1 ms older: too late
    engine, _, letters = run_engine(events, reject_late=True)
    assert engine.results == {"accepted": 3, "rejected": 1}
    assert [(letter["reason"], letter["field"]) for letter in letters] == [("too_late", "ts")]
    assert line(events[3]).decode() == letters[0]["raw"]


def test_without_reject_late_nothing_is_too_late() -> None:
    events = [ev("contact.started", T + 30 * H, contact="b"), ev("contact.started", at(0), contact="a")]
    engine, _, letters = run_engine(events, reject_late=False)
    assert engine.results == {"accepted": 2} and letters == []


# -- visit pairing -----------------------------------------------------------------------------

def test_wait_is_leave_minus_entry_in_either_order() -> None:
    entered, left = ev("queue.entered", at(0)), ev("queue.left", at(25), reason="answered")
    for order in ([entered, left], [left, entered]):
        _, records, _ = run_engine(order, as_of=at(30))
        r = rec(records)
        assert (r["offered"], r["answered"], r["answered_within_sla"], r["wait_avg_s"], r["wait_max_s"]) == (
            1, 1, 1, 25.0, 25.0)
        assert r["waiting_now"] == 0


def test_wait_s_wins_over_the_timestamps() -> None:
    events = [ev("queue.entered", at(0)), ev("queue.left", at(25), reason="answered", wait_s=50)]
    _, records, _ = run_engine(events)
    r = rec(records)
    assert (r["wait_avg_s"], r["answered_within_sla"], r["service_level"]) == (50.0, 0, 0.0)


def test_a_visit_whose_pair_arrives_later_counts_in_the_leave_minute() -> None:
    """Entered 09:55:50 (outside the 5m window at as_of 10:00:30), left 09:56:10 (inside it)."""
    entered = ev("queue.entered", at(-250))
    left = ev("queue.left", at(-230), reason="abandoned")
    late_other = ev("contact.started", at(30), contact="other")
    engine, records, _ = run_engine([left, late_other])
    assert rec(records, "5m")["abandoned"] == 0, "a leave without its entry has no wait yet: not counted"
    engine.process_raw(line(entered))
    records = {(r["region"], r["channel"], r["window"]): r for r in engine.records()}
    r5, r15 = rec(records, "5m"), rec(records, "15m")
    assert (r5["offered"], r5["abandoned"], r5["short_abandoned"]) == (0, 1, 0)
    assert (r15["offered"], r15["abandoned"]) == (1, 1)
    assert r5["window_start"] == "2026-11-22T09:56:00Z"


def test_times_stamped_out_of_order_by_two_systems_count_as_zero_never_negative() -> None:
    """A leave stamped before its entry and an end before its answer (clocks of different systems):
    a wait and a handle time of 0, whichever of each pair arrives first."""
    events = [ev("queue.entered", at(10)), ev("queue.left", at(8), reason="answered"),
              ev("contact.ended", at(7), resolved=True, handled_by="agent")]
    for order in (events, events[::-1]):
        _, records, _ = run_engine(order, as_of=at(20))
        r = rec(records)
        assert (r["answered"], r["wait_avg_s"], r["wait_max_s"], r["answered_within_sla"]) == (1, 0.0, 0.0, 1)
        assert r["handle_avg_s"] == 0.0


def test_a_leave_without_entry_or_wait_is_never_counted() -> None:
    _, records, _ = run_engine([ev("queue.left", at(0), reason="answered"), ev("contact.started", at(1))])
    r = rec(records)
    assert (r["answered"], r["wait_avg_s"], r["service_level"]) == (0, None, None)


def test_visits_of_several_queues() -> None:
    """Visit 1 is transferred to another queue, visit 2 is answered: one offered contact, two visits."""
    events = [
        ev("contact.started", at(0)),
        ev("queue.entered", at(1)),
        ev("queue.left", at(31), reason="transferred"),
        ev("contact.transferred", at(31), to="queue"),
        ev("queue.entered", at(32), visit=2),
        ev("queue.left", at(92), reason="answered", visit=2, agent_id="a1"),
        ev("contact.ended", at(332), resolved=True, handled_by="agent"),
    ]
    for order in (events, events[::-1]):
        _, records, _ = run_engine(order)
        r = rec(records)
        assert (r["offered"], r["answered"], r["abandoned"], r["answered_within_sla"]) == (2, 1, 0, 0)
        assert (r["wait_avg_s"], r["service_level"], r["abandon_rate"]) == (60.0, 0.0, 0.0)
        assert r["handle_avg_s"] == 240.0
        assert r["waiting_now"] == 0


def test_an_unanswered_later_visit_keeps_waiting() -> None:
    events = [ev("queue.entered", at(0)), ev("queue.left", at(10), reason="transferred"),
              ev("queue.entered", at(11), visit=2), ev("contact.started", at(70), contact="x")]
    _, records, _ = run_engine(events)
    r = rec(records)
    assert (r["waiting_now"], r["oldest_waiting_s"], r["waiting_over_sla"]) == (1, 59.0, 1)


# -- short abandons and the SLA threshold ---------------------------------------------------------------

@pytest.mark.parametrize(("wait_s", "short"), [(0, True), (4.999, True), (5, False), (5.001, False), (300, False)])
def test_short_abandon_is_a_wait_below_5_s(wait_s: float, short: bool) -> None:
    _, records, _ = run_engine([ev("queue.left", at(0), reason="abandoned", wait_s=wait_s)])
    r = rec(records)
    assert (r["abandoned"], r["short_abandoned"]) == (1, int(short))
    assert r["abandon_rate"] == (None if short else 1.0)
    assert r["service_level"] == (None if short else 0.0)


@pytest.mark.parametrize(("channel", "wait_s", "within"), [
    ("voice", 40, True), ("voice", 40.001, False), ("chat", 20, True), ("chat", 20.5, False),
    ("messenger", 60, True), ("social", 900, True), ("social", 901, False), ("email", 86400, True),
    ("email", 86401, False), ("app", 21, False), ("voice_assistant", 19.999, True),
])
def test_answered_within_sla_is_a_wait_at_most_the_channel_threshold(channel: str, wait_s: float,
                                                                     within: bool) -> None:
    _, records, _ = run_engine([ev("queue.left", at(0), channel=channel, reason="answered", wait_s=wait_s)])
    assert rec(records, channel=channel)["answered_within_sla"] == int(within)


def test_sub_millisecond_waits_at_the_boundaries() -> None:
    """wait_s is a number: 4.9996 s is below 5 s (short) and 40.0004 s is above 40 s (not within SLA)."""
    events = [ev("queue.left", at(0), reason="abandoned", wait_s=4.9996),
              ev("queue.left", at(1), contact="c2", reason="answered", wait_s=40.0004)]
    _, records, _ = run_engine(events)
    r = rec(records)
    assert (r["short_abandoned"], r["answered_within_sla"]) == (1, 0)


def test_a_wait_in_seconds_is_read_to_the_nearest_microsecond() -> None:
    """1.001 s times 10^6 is 1,000,999.99… as a float: cut down to whole microseconds, a wait equal to
    a 1.001 s short-abandon limit would fall below it and count as short."""
    settings = default_settings(CCPULSE_PIPELINE__SHORT_ABANDON_S="1.001")
    events = [ev("queue.left", at(0), contact="at-limit", reason="abandoned", wait_s=1.001),
              ev("queue.left", at(1), contact="below", reason="abandoned", wait_s=1.000999)]
    _, records, _ = run_engine(events, settings=settings)
    r = rec(records)
    assert (r["abandoned"], r["short_abandoned"]) == (2, 1)


def test_transfer_callback_and_timeout_leaves_are_neither_answered_nor_abandoned() -> None:
    events = [ev("queue.left", at(i), contact=f"c{i}", reason=reason, wait_s=90)
              for i, reason in enumerate(["transferred", "callback", "timeout"])]
    _, records, _ = run_engine([*events, ev("contact.started", at(5))])
    r = rec(records)
    assert (r["answered"], r["abandoned"], r["service_level"], r["abandon_rate"]) == (0, 0, None, None)


# -- handle time -------------------------------------------------------------------------------

def _handled(handled_by: str, **end: Any) -> list[dict[str, Any]]:
    return [ev("queue.entered", at(0)), ev("queue.left", at(10), reason="answered"),
            ev("contact.ended", at(130), resolved=True, handled_by=handled_by, **end)]


def test_handle_time_pairs_end_with_the_answered_leave_in_any_order() -> None:
    for order in itertools.permutations(_handled("agent")):
        _, records, _ = run_engine(order)
        assert rec(records)["handle_avg_s"] == 120.0


def test_handle_s_wins_over_pairing() -> None:
    _, records, _ = run_engine(_handled("agent", handle_s=75.5))
    assert rec(records)["handle_avg_s"] == 75.5


@pytest.mark.parametrize("handled_by", ["bot", "none"])
def test_handle_time_only_for_contacts_handled_by_an_agent(handled_by: str) -> None:
    _, records, _ = run_engine(_handled(handled_by, handle_s=75))
    assert rec(records)["handle_avg_s"] is None


def test_handle_time_uses_the_last_answered_visit_even_when_it_arrives_late() -> None:
    events = [ev("queue.left", at(10), reason="answered", wait_s=1),
              ev("contact.ended", at(300), resolved=True, handled_by="agent"),
              ev("queue.left", at(100), reason="answered", wait_s=1, visit=2)]
    for order in itertools.permutations(events):
        _, records, _ = run_engine(order)
        r = rec(records)
        assert r["handle_avg_s"] == 200.0, order
        assert r["answered"] == 2


def test_handle_avg_is_the_mean_over_contacts_with_a_known_handle_time() -> None:
    events = [*_handled("agent"),
              ev("contact.ended", at(50), contact="c2", resolved=True, handled_by="agent", handle_s=30),
              ev("contact.ended", at(60), contact="c3", resolved=True, handled_by="agent")]  # unknown
    _, records, _ = run_engine(events)
    assert rec(records)["handle_avg_s"] == 75.0
    assert rec(records)["agent_handled"] == 3


# -- tickets -----------------------------------------------------------------------------------

def test_ticket_resolution_pairs_in_either_order_and_counts_at_resolution() -> None:
    created = ev("ticket.created", T - 30 * H, contact=None, ticket_id="t1", channel="email")
    resolved = ev("ticket.resolved", at(0), contact=None, ticket_id="t1", channel="email")
    for order in ([created, resolved], [resolved, created]):
        _, records, _ = run_engine(order)
        r = rec(records, "today", channel="email")
        assert (r["tickets_created"], r["tickets_resolved"], r["ticket_24h_rate"], r["ticket_72h_rate"]) == (
            0, 1, 0.0, 1.0)
        assert r["tickets_open"] == 0


def test_ticket_resolved_before_its_creation_is_known_is_not_yet_counted() -> None:
    _, records, _ = run_engine([ev("ticket.resolved", at(0), contact=None, ticket_id="t1"),
                                ev("contact.started", at(1))])
    assert rec(records, "today")["tickets_resolved"] == 0
