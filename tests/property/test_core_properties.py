"""Properties of the metric core on generated event sets (issue 3, "Done when"):

- the records do not change when the events are shuffled or lines are duplicated (engine and replay);
- every rollup equals the sum of its parts;
- percentiles stay within max(1 s, 5 %) of an exact nearest-rank computation;
- every count, ratio and live value equals the brute-force oracle's (`tests/oracle.py`).
"""

from __future__ import annotations

import contextlib
import io
import math
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from oracle import (
    ALL,
    COUNT_FIELDS,
    HORIZON_MS,
    PERCENTILES,
    RATIO_FIELDS,
    SECONDS_FIELDS,
    WINDOWS,
    Oracle,
    ev,
    event_ms,
    iso,
    line,
    ms,
    nearest_rank,
    run_engine,
)

from streams import cli

MIN = 60_000
H = 3_600_000
BASE = ms("2026-11-10T06:00:00Z")
SPAN = 20 * H
REGIONS = ("RU-KGD", "RU-MOW", "RU-CHE", "RU-KAM")
CHANNELS = ("voice", "chat", "email", "messenger")
REASONS = ("answered", "answered", "answered", "abandoned", "abandoned", "transferred", "callback", "timeout")
OFFSETS = (None, 0, 3, 12, -1)  # None: integer epoch ms, else RFC 3339 in that UTC offset
PROFILE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Records = dict[tuple[str, str, str], dict[str, Any]]


# -- strategies ----------------------------------------------------------------------------------

@st.composite
def contact_events(draw: st.DrawFn, number: int) -> list[dict[str, Any]]:
    """One contact's events: start, maybe a bot, 0-3 queue visits (a side may be missing), an end, a survey."""
    cid = f"c{number}"
    region, channel = draw(st.sampled_from(REGIONS)), draw(st.sampled_from(CHANNELS))
    offset = draw(st.sampled_from(OFFSETS))
    events: list[dict[str, Any]] = []

    def add(kind: str, ts: int, **extra: Any) -> None:
        stamp: int | str = ts if offset is None else iso(ts, offset)
        events.append(ev(kind, stamp, contact=cid, region=region, channel=channel,
                         event_id=f"{cid}.{len(events)}", **extra))

    t = BASE + draw(st.one_of(st.integers(0, SPAN), st.integers(SPAN - 20 * MIN, SPAN)))
    if draw(st.integers(0, 9)) > 0:
        add("contact.started", t)
    if draw(st.booleans()):
        add("bot.started", t)
        t += draw(st.integers(0, 300_000))
        add("bot.ended", t, outcome=draw(st.sampled_from(("resolved", "handoff", "abandoned"))))
    for visit in range(1, draw(st.integers(0, 3)) + 1):
        visit_field = {} if visit == 1 and draw(st.booleans()) else {"visit": visit}
        wait = draw(st.one_of(st.integers(0, 8_000), st.integers(0, 60_000), st.integers(0, 900_000)))
        sides = draw(st.sampled_from(("both", "both", "both", "no_entry", "no_leave")))
        if sides != "no_entry":
            add("queue.entered", t, **visit_field)
        t += wait
        if sides != "no_leave":
            extra: dict[str, Any] = {"reason": draw(st.sampled_from(REASONS)), **visit_field}
            if draw(st.integers(0, 3)) == 0:
                extra["wait_s"] = draw(st.integers(0, 200_000)) / 1000
            add("queue.left", t, **extra)
        t += draw(st.integers(0, 5_000))
    if draw(st.integers(0, 4)) > 0:
        t += draw(st.integers(0, 900_000))
        end: dict[str, Any] = {"resolved": draw(st.booleans()),
                               "handled_by": draw(st.sampled_from(("agent", "agent", "bot", "none")))}
        for name in ("escalated", "first_contact"):
            if draw(st.booleans()):
                end[name] = draw(st.booleans())
        if draw(st.integers(0, 3)) == 0:
            end["handle_s"] = draw(st.integers(0, 1_800_000)) / 1000
        add("contact.ended", t, **end)
    if draw(st.integers(0, 2)) == 0:
        scores = draw(st.sampled_from(({"csat": 0}, {"nps": 0}, {"csat": 0, "nps": 0})))
        scores = {name: draw(st.integers(1, 5) if name == "csat" else st.integers(0, 10)) for name in scores}
        add("survey.responded", t + draw(st.integers(0, 600_000)), **scores)
    return events


@st.composite
def ticket_events(draw: st.DrawFn, number: int) -> list[dict[str, Any]]:
    """A ticket created up to 100 h before the span, maybe resolved (possibly from another channel)."""
    tid = f"t{number}"
    created = BASE + draw(st.integers(-100 * H, SPAN))
    region, channel = draw(st.sampled_from(REGIONS)), draw(st.sampled_from(CHANNELS))
    events = [ev("ticket.created", created, contact=None, region=region, channel=channel, ticket_id=tid,
                 event_id=f"{tid}.c")]
    if draw(st.booleans()):
        took = draw(st.sampled_from((0, H, 24 * H, 24 * H + 1, 72 * H, 72 * H + 1))) + draw(st.integers(0, 3 * H))
        if created + took <= BASE + SPAN:
            channel = draw(st.sampled_from((channel, *CHANNELS)))
            events.append(ev("ticket.resolved", created + took, contact=None, region=region, channel=channel,
                             ticket_id=tid, event_id=f"{tid}.r"))
    return events


@st.composite
def event_sets(draw: st.DrawFn) -> tuple[list[dict[str, Any]], int | None]:
    """Valid, conflict-free events of several contacts and tickets, and an optional `--as-of`."""
    contacts = draw(st.integers(1, 25))
    tickets = draw(st.integers(0, 6))
    events = [e for n in range(contacts) for e in draw(contact_events(n))]
    events += [e for n in range(tickets) for e in draw(ticket_events(n))]
    as_of = draw(st.one_of(st.none(), st.integers(BASE, BASE + SPAN + 30 * MIN)))
    if as_of is not None and not any(event_ms(e["ts"]) <= as_of for e in events):
        as_of = None
    return events, as_of


# -- running the core ------------------------------------------------------------------------------

def core_records(events: list[dict[str, Any]], as_of: int | None) -> Records:
    """The engine over the events visible at `as_of`, in the order given."""
    visible = [e for e in events if as_of is None or event_ms(e["ts"]) <= as_of]
    return run_engine(visible, as_of=as_of)[1]


def replay_records(lines: list[bytes], as_of: int | None) -> list[dict[str, Any]]:
    """`ccpulse replay FILE [--as-of]` in this process, its JSON output parsed."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.jsonl"
        path.write_bytes(b"".join(raw + b"\n" for raw in lines))
        out = io.TextIOWrapper(io.BytesIO())
        args = ["replay", str(path), *([] if as_of is None else ["--as-of", iso(as_of)])]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            assert cli.main(args) == 0
        out.flush()
        return orjson.loads(out.buffer.getvalue())


def close(a: float | None, b: float | None, tolerance: float) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and abs(a - b) <= tolerance)


def within_percentile_tolerance(value: float | None, exact: float | None) -> bool:
    if value is None or exact is None:
        return value is None and exact is None
    return abs(value - exact) <= max(1.0, 0.05 * exact) + 0.0005


# -- properties --------------------------------------------------------------------------------

@PROFILE
@given(event_sets(), st.randoms(use_true_random=False))
def test_records_do_not_depend_on_order_or_duplicated_lines(data: tuple[list[dict[str, Any]], int | None],
                                                           rnd: random.Random) -> None:
    events, as_of = data
    expected = core_records(events, as_of)
    shuffled = events[:]
    rnd.shuffle(shuffled)
    times = [event_ms(e["ts"]) for e in events]
    if max(times) - min(times) <= HORIZON_MS:
        # the streaming engine owes order independence only within the horizon: anything older is too_late
        assert core_records(shuffled, as_of) == expected
    lines = [line(e) for e in shuffled]
    lines += rnd.choices(lines, k=len(lines) // 3 + 1)
    rnd.shuffle(lines)
    replayed = {(r["region"], r["channel"], r["window"]): r for r in replay_records(lines, as_of)}
    assert replayed == expected


@PROFILE
@given(event_sets())
def test_every_rollup_is_the_sum_of_its_parts(data: tuple[list[dict[str, Any]], int | None]) -> None:
    events, as_of = data
    records = core_records(events, as_of)
    pairs = {(r, c) for r, c, _ in records if ALL not in (r, c)}
    regions, channels = {r for r, _ in pairs}, {c for _, c in pairs}
    if not pairs:
        assert records == {}
        return

    def check(total: tuple[str, str], parts: list[tuple[str, str]], window: str, live_only: bool = False) -> None:
        whole = records[(*total, window)]
        rows = [records[(*p, window)] for p in parts if (*p, window) in records]
        live = ("waiting_now", "waiting_over_sla", "tickets_open", "tickets_open_over_72h")
        for name in live if live_only else COUNT_FIELDS:
            assert whole[name] == sum(row[name] for row in rows), (total, window, name)
        for name in ("oldest_waiting_s", *(() if live_only else ("wait_max_s",))):
            values = [row[name] for row in rows if row[name] is not None]
            assert whole[name] == (max(values) if values else None), (total, window, name)

    for window in WINDOWS:
        for region in regions:
            check((region, ALL), [(region, c) for c in channels], window)
        # region = ALL `today` starts at Moscow midnight, so only the live values add up across regions
        today = window == "today"
        for channel in channels:
            check((ALL, channel), [(r, channel) for r in regions], window, live_only=today)
        check((ALL, ALL), [(ALL, c) for c in channels], window)
        check((ALL, ALL), list(pairs), window, live_only=today)


@PROFILE
@given(event_sets())
def test_every_number_equals_the_brute_force_oracle(data: tuple[list[dict[str, Any]], int | None]) -> None:
    events, as_of = data
    records = core_records(events, as_of)
    oracle = Oracle(events, as_of)
    assert {(r, c) for r, c, _ in records} == oracle.keys()
    for (region, channel, window), record in records.items():
        expected = oracle.record(region, channel, window)
        where = (region, channel, window)
        assert ms(record["window_start"]) == expected["window_start"], where
        assert ms(record["window_end"]) == expected["window_end"], where
        assert ms(record["as_of"]) == oracle.as_of
        for name in COUNT_FIELDS:
            assert record[name] == expected[name], (*where, name)
        for name in RATIO_FIELDS:
            assert close(record[name], expected[name], 1e-9 * max(1.0, abs(expected[name] or 0))), (*where, name)
        for name in SECONDS_FIELDS:
            assert close(record[name], expected[name], 0.0006), (*where, name, record[name], expected[name])
        for name, _ in PERCENTILES:
            assert within_percentile_tolerance(record[name], expected[name]), (*where, name, record[name],
                                                                               expected[name])


@PROFILE
@given(st.lists(st.one_of(st.integers(0, 25_000), st.integers(0, 3_600_000), st.integers(0, 4 * 86_400_000)),
                min_size=1, max_size=300),
       st.sampled_from(CHANNELS))
def test_percentiles_are_within_max_1s_5pct_of_exact_nearest_rank(waits_ms: list[int], channel: str) -> None:
    left = BASE + 10 * 86_400_000
    events = [ev("queue.left", left - i, contact=f"c{i}", channel=channel, reason="answered", wait_s=w / 1000)
              for i, w in enumerate(waits_ms)]
    record = run_engine(events)[1][("RU-MOW", channel, "60m")]
    waits = [w / 1000 for w in waits_ms]
    assert record["answered"] == len(waits)
    assert math.isclose(record["wait_max_s"], max(waits), abs_tol=0.0005)
    for name, percent in PERCENTILES:
        assert within_percentile_tolerance(record[name], nearest_rank(waits, percent)), (name, record[name])
