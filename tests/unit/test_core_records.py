"""Records (spec metrics.md): each ratio's definition, nulls, windows, region-local `today`,
rollups, live values, and the record's fields and order."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import pytest

from streams import config
from streams.core.aggregator import CONTACTS, PairState
from streams.core.buckets import COUNTS, WAIT_BINS, new_bucket
from streams.core.engine import CHUNK_LINES, Engine
from streams.core.timefmt import now_ms
from streams.simulate.generator import SimConfig, Simulation
from streams.simulate.scenarios import Duplicates, Late, Malformed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from oracle import RATIO_FIELDS, RECORD_FIELDS, UTC_OFFSET_H, ev, iso, ms, nearest_rank, run_engine

T = ms("2026-11-22T10:00:00Z")
H = 3_600_000
DAY = 24 * H
Records = dict[tuple[str, str, str], dict[str, Any]]


def at(seconds: float) -> int:
    return T + round(seconds * 1000)


def rec(records: Records, window: str = "60m", region: str = "RU-MOW", channel: str = "voice") -> dict[str, Any]:
    return records[(region, channel, window)]


def visit(i: int, reason: str, wait_s: float, channel: str = "voice", region: str = "RU-MOW") -> list[dict[str, Any]]:
    """One queue visit of its own contact, entered `wait_s` before it is left at T + i s."""
    return [ev("queue.entered", at(i - wait_s), contact=f"v{i}", channel=channel, region=region),
            ev("queue.left", at(i), contact=f"v{i}", channel=channel, region=region, reason=reason)]


# -- queue ratios ----------------------------------------------------------------------------------

def test_service_level_and_abandon_rate_exclude_short_abandons_from_the_denominator() -> None:
    events = [*visit(1, "answered", 10), *visit(2, "answered", 30), *visit(3, "answered", 41),
              *visit(4, "abandoned", 3), *visit(5, "abandoned", 20), *visit(6, "abandoned", 4.999),
              *visit(7, "transferred", 60)]
    _, records, _ = run_engine(events)
    r = rec(records)
    assert (r["offered"], r["answered"], r["abandoned"], r["short_abandoned"], r["answered_within_sla"]) == (
        7, 3, 3, 2, 2)
    assert r["service_level"] == pytest.approx(2 / 4)
    assert r["abandon_rate"] == pytest.approx(1 / 4)
    assert r["wait_avg_s"] == pytest.approx(27.0)
    assert r["wait_max_s"] == 41.0


def within_tolerance(value: float | None, exact: float) -> bool:
    return value is not None and abs(value - exact) <= max(1.0, 0.05 * exact) + 0.0005


@pytest.mark.parametrize("waits", [
    [12], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [0, 0, 0, 0.2, 19.9], [30, 31, 45, 120, 600, 3600],
    [0.4 * i for i in range(1, 101)], [700, 7000, 70000, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5],
])
def test_wait_percentiles_are_nearest_rank_within_max_1s_5pct(waits: list[float]) -> None:
    events = [e for i, w in enumerate(waits) for e in visit(i, "answered", w, channel="email")]
    _, records, _ = run_engine(events)
    r = rec(records, "today", channel="email")
    assert r["answered"] == len(waits)
    for name, percent in (("wait_p50_s", 50), ("wait_p90_s", 90), ("wait_p95_s", 95)):
        exact = nearest_rank(waits, percent)
        assert within_tolerance(r[name], exact), (name, r[name], exact)
        assert r[name] <= r["wait_max_s"]
    assert r["wait_max_s"] == pytest.approx(max(waits), abs=0.0005)


def test_a_percentile_that_falls_on_a_bin_edge_is_exact() -> None:
    """Bins are (edge below, edge]: waits of whole seconds, as many systems report them, fall in the bin
    whose upper edge they are, so their percentiles read exactly rather than up to 1 s high."""
    waits = [3, 3, 3, 10]
    events = [e for i, w in enumerate(waits) for e in visit(i, "answered", w)]
    _, records, _ = run_engine(events)
    r = rec(records)
    assert (r["wait_p50_s"], r["wait_p90_s"], r["wait_max_s"]) == (3.0, 10.0, 10.0)


def test_wait_statistics_only_count_answered_visits() -> None:
    events = [*visit(1, "answered", 8), *visit(2, "abandoned", 900), *visit(3, "timeout", 1000)]
    _, records, _ = run_engine(events)
    r = rec(records)
    assert (r["wait_avg_s"], r["wait_p50_s"], r["wait_p95_s"], r["wait_max_s"]) == (8.0, 8.0, 8.0, 8.0)


# -- contact ratios --------------------------------------------------------------------------------

def ended(contact: str, resolved: bool, handled_by: str = "agent", **extra: Any) -> dict[str, Any]:
    return ev("contact.ended", at(0), contact=contact, resolved=resolved, handled_by=handled_by, **extra)


def test_resolution_fcr_and_first_line() -> None:
    events = [ended("a", True, first_contact=True), ended("b", True, first_contact=False),
              ended("c", True, escalated=True, first_contact=True), ended("d", True),
              ended("e", False, first_contact=True), ended("f", False, escalated=True),
              ended("g", True, escalated=False, first_contact=True)]
    _, records, _ = run_engine(events)
    r = rec(records)
    assert (r["ended"], r["resolved"], r["resolved_first_contact"], r["fcr_known"], r["escalated"]) == (
        7, 5, 3, 4, 2)
    assert r["resolution_rate"] == pytest.approx(5 / 7)
    assert r["fcr_rate"] == pytest.approx(3 / 4)
    assert r["first_line_rate"] == pytest.approx(4 / 7)


def test_bot_share_and_containment() -> None:
    events = [ended("a", True, "bot"), ended("b", True, "agent"), ended("c", False, "agent"),
              ended("d", False, "agent"), ended("e", False, "none"),
              *[ev("bot.ended", at(0), contact=f"b{i}", outcome=o)
                for i, o in enumerate(["resolved", "resolved", "handoff", "abandoned", "resolved"])],
              ev("bot.started", at(0), contact="b9")]
    _, records, _ = run_engine(events)
    r = rec(records)
    assert (r["bot_handled"], r["agent_handled"], r["bot_share"]) == (1, 3, 0.25)
    assert (r["bot_sessions"], r["bot_resolved"], r["bot_handoffs"], r["bot_abandoned"]) == (5, 3, 1, 1)
    assert r["bot_containment"] == pytest.approx(0.6)


def test_csat_and_nps() -> None:
    scores = [{"csat": 5}, {"csat": 5, "nps": 10}, {"csat": 4, "nps": 9}, {"csat": 3, "nps": 8},
              {"csat": 1, "nps": 6}, {"nps": 0}, {"nps": 7}]
    events = [ev("survey.responded", at(0), contact=f"s{i}", **s) for i, s in enumerate(scores)]
    _, records, _ = run_engine(events)
    r = rec(records)
    assert (r["csat_responses"], r["nps_responses"]) == (5, 6)
    assert r["csat_avg"] == pytest.approx(18 / 5)
    assert (r["csat_top_box"], r["csat_top2"]) == (pytest.approx(0.4), pytest.approx(0.6))
    assert r["nps"] == pytest.approx(100 * (2 - 2) / 6)
    surveys = [ev("survey.responded", at(0), contact=f"n{i}", nps=n) for i, n in enumerate([10, 10, 6])]
    _, records, _ = run_engine(surveys)
    assert rec(records)["nps"] == pytest.approx(100 / 3)


def test_ticket_24h_and_72h_rates_count_over_tickets_resolved() -> None:
    ages_h = [1, 24, 24.001, 48, 72, 72.01, 200]
    events = []
    for i, age in enumerate(ages_h):
        events.append(ev("ticket.created", at(i - age * 3600), contact=None, ticket_id=f"t{i}", channel="email"))
        events.append(ev("ticket.resolved", at(i), contact=None, ticket_id=f"t{i}", channel="email"))
    events.append(ev("ticket.created", at(-5 * 3600), contact=None, ticket_id="open", channel="email"))
    _, records, _ = run_engine(events)
    r = rec(records, "today", channel="email")
    assert (r["tickets_created"], r["tickets_resolved"]) == (2, 7)  # created today (since 21:00Z): 1 h and 5 h ago
    assert r["ticket_24h_rate"] == pytest.approx(2 / 7)
    assert r["ticket_72h_rate"] == pytest.approx(5 / 7)
    assert (r["tickets_open"], r["tickets_open_over_72h"]) == (1, 0)


def test_handle_avg_in_a_record() -> None:
    events = [ev("contact.ended", at(0), contact=c, resolved=True, handled_by="agent", handle_s=h)
              for c, h in (("a", 100), ("b", 201), ("c", 0.5))]
    _, records, _ = run_engine(events)
    assert rec(records)["handle_avg_s"] == pytest.approx(301.5 / 3, abs=0.0005)


def test_zero_denominators_give_null_never_0_or_1() -> None:
    _, records, _ = run_engine([ev("contact.started", at(0))])
    for window in ("5m", "15m", "60m", "today"):
        r = rec(records, window)
        assert r["contacts"] == 1
        for name in (*RATIO_FIELDS, "wait_avg_s", "wait_p50_s", "wait_p90_s", "wait_p95_s", "wait_max_s",
                     "handle_avg_s", "oldest_waiting_s"):
            assert r[name] is None, name


def test_only_short_abandons_leave_service_level_null() -> None:
    _, records, _ = run_engine(visit(1, "abandoned", 2))
    r = rec(records)
    assert (r["abandoned"], r["short_abandoned"], r["service_level"], r["abandon_rate"]) == (1, 1, None, None)


# -- live values -----------------------------------------------------------------------------------

def test_live_waiting_and_open_tickets_at_as_of() -> None:
    events = [ev("queue.entered", at(-50), contact="w1"), ev("queue.entered", at(-30), contact="w2"),
              ev("queue.entered", at(-100), contact="done"), ev("queue.left", at(-20), contact="done",
                                                               reason="answered"),
              ev("queue.entered", at(-10), contact="w3", channel="chat"),
              ev("ticket.created", T - 73 * H, contact=None, ticket_id="old"),
              ev("ticket.created", T - 1 * H, contact=None, ticket_id="new"),
              ev("ticket.created", T - 100 * H, contact=None, ticket_id="closed"),
              ev("ticket.resolved", at(-5), contact=None, ticket_id="closed"),
              ev("contact.started", at(0), contact="clock")]
    _, records, _ = run_engine(events)
    r = rec(records)
    assert (r["waiting_now"], r["oldest_waiting_s"], r["waiting_over_sla"]) == (2, 50.0, 1)
    assert (r["tickets_open"], r["tickets_open_over_72h"]) == (2, 1)
    for window in ("5m", "15m", "today"):
        assert rec(records, window)["waiting_now"] == 2, "live values are not windowed"
    chat = rec(records, channel="chat")
    assert (chat["waiting_now"], chat["oldest_waiting_s"], chat["waiting_over_sla"]) == (1, 10.0, 0)
    both = rec(records, region="RU-MOW", channel="ALL")
    assert (both["waiting_now"], both["oldest_waiting_s"], both["waiting_over_sla"]) == (3, 50.0, 1)


def test_waiting_over_sla_and_open_over_72h_mean_strictly_longer() -> None:
    """voice's threshold is 40 s: a visit waiting exactly 40 s is not over it; a ticket open exactly 72 h
    is not over 72 h."""
    events = [ev("queue.entered", at(-40), contact="at-threshold"), ev("queue.entered", at(-40.001), contact="over"),
              ev("ticket.created", T - 72 * H, contact=None, ticket_id="at-72h", channel="email"),
              ev("ticket.created", T - 72 * H - 1, contact=None, ticket_id="over-72h", channel="email")]
    _, records, _ = run_engine(events, as_of=T)
    assert (rec(records)["waiting_now"], rec(records)["waiting_over_sla"]) == (2, 1)
    email = rec(records, channel="email")
    assert (email["tickets_open"], email["tickets_open_over_72h"]) == (2, 1)


def test_a_ticket_created_after_as_of_is_not_open_yet() -> None:
    events = [ev("ticket.created", at(-60), contact=None, ticket_id="before", channel="email"),
              ev("ticket.created", at(60), contact=None, ticket_id="after", channel="email")]
    _, records, _ = run_engine(events, as_of=T)
    assert rec(records, channel="email")["tickets_open"] == 1


def test_a_visit_waits_up_to_the_horizon_and_not_beyond() -> None:
    """Entered at 10:00:10; the watermark moving on releases state by the minute, so within the minute
    of the horizon's edge it is the exact time that decides."""
    horizon = 26 * H
    entered = at(10)
    for clock_at, waiting in ((entered + horizon - 1000, 1), (entered + horizon + 30_000, 0)):
        events = [ev("queue.entered", entered, contact="w"), ev("contact.started", clock_at, contact="clock")]
        _, records, _ = run_engine(events)
        r = rec(records)
        assert r["waiting_now"] == waiting, f"as_of {(clock_at - entered) / 1000:.0f} s after the entry"
        assert r["oldest_waiting_s"] == ((clock_at - entered) / 1000 if waiting else None)


# -- windows ---------------------------------------------------------------------------------------

def test_window_bounds_and_membership_of_5m_15m_60m() -> None:
    as_of = ms("2026-11-22T10:00:31.250Z")
    times = {"in_5m": "2026-11-22T09:56:00.000Z", "before_5m": "2026-11-22T09:55:59.999Z",
             "in_15m": "2026-11-22T09:46:00Z", "before_15m": "2026-11-22T09:45:59.999Z",
             "in_60m": "2026-11-22T09:01:00Z", "before_60m": "2026-11-22T09:00:59.999Z",
             "last": "2026-11-22T10:00:31.250Z"}
    events = [ev("contact.started", ts, contact=name) for name, ts in times.items()]
    _, records, _ = run_engine(events)
    expected = {"5m": ("2026-11-22T09:56:00Z", 2), "15m": ("2026-11-22T09:46:00Z", 4),
                "60m": ("2026-11-22T09:01:00Z", 6)}
    for window, (start, contacts) in expected.items():
        r = rec(records, window)
        assert (r["window_start"], r["window_end"], r["as_of"]) == (start, "2026-11-22T10:01:00Z",
                                                                     "2026-11-22T10:00:31.250Z")
        assert r["contacts"] == contacts, window
    assert ms(rec(records)["as_of"]) == as_of


ZONES = sorted(set(UTC_OFFSET_H) - {"ALL"}, key=lambda code: UTC_OFFSET_H[code])


@pytest.mark.parametrize("as_of_text", ["2026-11-22T10:00:00Z", "2026-11-22T13:30:00Z", "2026-11-21T21:00:00Z",
                                        "2026-11-22T20:59:59.999Z", "2026-11-22T12:00:00Z"])
@pytest.mark.parametrize("region", ZONES)
def test_today_starts_at_region_local_midnight(region: str, as_of_text: str) -> None:
    as_of = ms(as_of_text)
    offset = UTC_OFFSET_H[region] * H
    midnight = (as_of + offset) // DAY * DAY - offset
    events = [ev("contact.started", midnight - 1, contact="before", region=region),
              ev("contact.started", midnight, contact="at", region=region),
              ev("contact.started", as_of, contact="clock", region=region)]
    _, records, _ = run_engine(events)
    r = rec(records, "today", region=region)
    assert r["window_start"] == iso(midnight).replace(".000Z", "Z")
    assert r["contacts"] == 2
    region_all = rec(records, "today", region=region, channel="ALL")
    assert (region_all["window_start"], region_all["contacts"]) == (r["window_start"], r["contacts"])


def test_region_all_today_uses_moscow_midnight() -> None:
    """At 2026-11-22T10:00Z: Kamchatka's day began 2026-11-21T12:00Z, Moscow's 21:00Z, Kaliningrad's 22:00Z."""
    events = [ev("contact.started", ms("2026-11-21T15:00:00Z"), contact="kam", region="RU-KAM"),
              ev("contact.started", ms("2026-11-21T21:30:00Z"), contact="kgd", region="RU-KGD"),
              ev("contact.started", ms("2026-11-21T20:59:00Z"), contact="mow", region="RU-MOW"),
              ev("contact.started", T, contact="clock", region="RU-MOW")]
    _, records, _ = run_engine(events)
    assert rec(records, "today", "RU-KAM")["contacts"] == 1
    assert rec(records, "today", "RU-KGD")["contacts"] == 0
    assert rec(records, "today", "RU-MOW")["contacts"] == 1
    for channel in ("voice", "ALL"):
        total = rec(records, "today", "ALL", channel)
        assert total["window_start"] == "2026-11-21T21:00:00Z"
        assert total["contacts"] == 2  # kgd and clock


# -- rollups ---------------------------------------------------------------------------------------

def test_rollups_add_counts_and_then_compute_ratios() -> None:
    """MOW voice 1 of 1 within SLA; CHE voice 0 of 3; MOW chat 1 of 4: ratios are never averaged."""
    events = [*visit(1, "answered", 10, "voice", "RU-MOW"),
              *[e for i in range(3) for e in visit(10 + i, "answered", 100, "voice", "RU-CHE")],
              *visit(20, "answered", 5, "chat", "RU-MOW"),
              *[e for i in range(3) for e in visit(30 + i, "answered", 50, "chat", "RU-MOW")]]
    _, records, _ = run_engine(events)
    assert rec(records, region="RU-MOW", channel="ALL")["service_level"] == pytest.approx(2 / 5)
    assert rec(records, region="ALL", channel="voice")["service_level"] == pytest.approx(1 / 4)
    assert rec(records, region="ALL", channel="ALL")["service_level"] == pytest.approx(2 / 8)
    assert rec(records, region="ALL", channel="ALL")["wait_max_s"] == 100.0
    assert rec(records, region="ALL", channel="ALL")["answered"] == 8
    keys = {(r, c) for r, c, _ in records}
    assert keys == {("RU-MOW", "voice"), ("RU-MOW", "chat"), ("RU-CHE", "voice"), ("RU-MOW", "ALL"),
                    ("RU-CHE", "ALL"), ("ALL", "voice"), ("ALL", "chat"), ("ALL", "ALL")}
    for key in keys:
        assert [w for r, c, w in records if (r, c) == key] == ["5m", "15m", "60m", "today"]


def test_sla_threshold_is_the_channel_s_and_null_on_all() -> None:
    events = [ev("contact.started", at(0), channel=c, contact=c) for c in ("voice", "chat", "social", "email")]
    _, records, _ = run_engine(events)
    assert {c: rec(records, channel=c)["sla_threshold_s"] for c in ("voice", "chat", "social", "email", "ALL")} == {
        "voice": 40, "chat": 20, "social": 900, "email": 86400, "ALL": None}
    assert rec(records, region="ALL", channel="ALL")["sla_threshold_s"] is None
    assert isinstance(rec(records, channel="voice")["sla_threshold_s"], int)


def test_record_fields_and_order_are_the_spec_example_s() -> None:
    engine, records, _ = run_engine([*visit(1, "answered", 10)])
    r = rec(records, "15m")
    assert tuple(r) == RECORD_FIELDS
    assert (r["schema"], r["region"], r["channel"], r["window"]) == ("ccpulse.metrics/v1", "RU-MOW", "voice", "15m")
    assert [(x["region"], x["channel"], x["window"]) for x in engine.records()] == [
        (reg, ch, w) for reg, ch in sorted({(a, b) for a, b, _ in records}) for w in ("5m", "15m", "60m", "today")]


def test_records_read_between_events_do_not_go_stale() -> None:
    """Whole-hour buckets are merged from minutes when a record first reads them; events arriving
    after that (late ones into past hours, more in the same minute) must still be counted."""
    start = now_ms() - 5 * 3_600_000
    sim = SimConfig(start_ms=start, seed=12, duration_s=4 * 3600, regions=("RU-MOW", "RU-KAM"), volume=2.0)
    values = [value for _, _, value in Simulation(sim)]
    held_back = set(random.Random(3).sample(range(len(values)), len(values) // 20))
    reading = Engine(config.load(env={}))
    for index, value in enumerate(values):
        if index not in held_back:
            reading.process_raw(value)
        if index % 500 == 0:
            reading.records()  # as the streaming stage does once a second
    for index in sorted(held_back):
        reading.process_raw(values[index])
        if index % 7 == 0:
            reading.records()
    fresh = Engine(config.load(env={}))
    for value in values:
        fresh.process_raw(value)
    as_of = fresh.watermark.value
    assert reading.records(as_of) == fresh.records(as_of)


def test_an_hour_read_while_its_last_minute_is_being_written_sees_later_writes() -> None:
    """A 60m window that ends on an hour boundary reads that hour whole while its last minute
    still receives facts: the next write must drop the merged hour."""
    pair = PairState()
    last_minute_ts = 10 * 3_600_000 - 30_000
    pair.bucket(last_minute_ts)[CONTACTS] += 1
    assert pair.hour_bucket(9)[CONTACTS] == 1
    pair.bucket(last_minute_ts + 1_000)[CONTACTS] += 1
    assert pair.hour_bucket(9)[CONTACTS] == 2


def test_a_span_read_while_one_of_its_minutes_is_being_written_sees_later_writes() -> None:
    """A window's older minutes are merged once and kept: a late fact into one of them, even into
    the minute the pair wrote last (its fast path), must drop the merge."""
    pair = PairState()
    late_ts = 101 * 60_000 + 10_000
    pair.bucket(late_ts)[CONTACTS] += 1
    assert pair.span_bucket(98, 103)[CONTACTS] == 1
    pair.bucket(late_ts + 1_000)[CONTACTS] += 1
    assert pair.span_bucket(98, 103)[CONTACTS] == 2
    pair.bucket(103 * 60_000)[CONTACTS] += 1  # the newest minute is not part of the span
    assert pair.span_bucket(98, 103)[CONTACTS] == 2
    assert pair.span_bucket(98, 104)[CONTACTS] == 3


def test_events_processed_a_chunk_at_a_time_give_what_one_by_one_gives() -> None:
    """`process_lines` decodes and tracks a chunk before counting its facts; state must still be
    released at the very points the one-by-one order releases it, and rejections come out in the
    order of the input."""
    start = now_ms() - 32 * H
    scenarios = (Duplicates(0.03), Malformed(0.02), Late(0.05, 20 * 60_000))
    sim = SimConfig(start_ms=start, seed=21, duration_s=30 * 3600, regions=("RU-KAM", "RU-KGD"), volume=1.5,
                    scenarios=scenarios)
    values = [value for _, _, value in Simulation(sim)]
    settings = config.load(env={})
    letters: dict[str, list[bytes]] = {"one": [], "chunked": []}
    one = Engine(settings, dead_letters=lambda raw, _: letters["one"].append(raw), clock=lambda: start + 40 * H)
    chunked = Engine(settings, dead_letters=lambda raw, _: letters["chunked"].append(raw),
                     clock=lambda: start + 40 * H)
    for value in values:
        one.process_raw(value)
    chunked.process_lines(values)
    assert len(values) > 5 * CHUNK_LINES
    assert one.rejections["malformed"] and one.results["duplicate"]
    oldest_kept = min(minute for pair in one.aggregator.pairs.values() for minute in pair.minutes)
    assert oldest_kept * 60_000 > start + 2 * H, "30 h of events past a 26 h horizon release state"
    assert (chunked.results, chunked.rejections) == (one.results, one.rejections)
    assert letters["chunked"] == letters["one"]
    assert chunked.records() == one.records()
    assert [len(pair.minutes) for pair in chunked.aggregator.pairs.values()] == [
        len(pair.minutes) for pair in one.aggregator.pairs.values()]


def test_a_new_bucket_is_zero_counts_and_bins_of_its_own_with_no_spare_slots() -> None:
    first = new_bucket()
    first[CONTACTS] += 1
    first[WAIT_BINS][3] = 1
    second = new_bucket()
    assert second == [0] * COUNTS + [{}], "a bucket written to leaves the next one untouched"
    # a day's state holds ~115,000 minute buckets: a list grown by appending keeps spare slots
    assert sys.getsizeof(second) == sys.getsizeof([None] * (COUNTS + 1))
