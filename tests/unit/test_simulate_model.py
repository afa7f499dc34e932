"""Calibration: a simulated day of every region lands near the operator's published figures."""

from __future__ import annotations

import collections
import datetime as dt
import math
import time
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from streams import regions
from streams.core.timefmt import parse_rfc3339
from streams.simulate import model
from streams.simulate.generator import SimConfig, generate

DAY_START = parse_rfc3339("2025-03-03T00:00:00Z")
ONLINE = {"chat", "messenger", "app", "social"}


@dataclass
class Day:
    seconds: float = 0.0
    events: int = 0
    started: collections.Counter[str] = field(default_factory=collections.Counter)
    per_region: collections.Counter[str] = field(default_factory=collections.Counter)
    ended: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    left: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    answered_waits: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    handles: list[float] = field(default_factory=list)
    csat: collections.Counter[int] = field(default_factory=collections.Counter)
    ticket_hours: list[float] = field(default_factory=list)
    first_line: collections.Counter[bool] = field(default_factory=collections.Counter)
    first_contact: collections.Counter[bool] = field(default_factory=collections.Counter)
    moscow_hours: collections.Counter[int] = field(default_factory=collections.Counter)


@pytest.fixture(scope="module")
def day() -> Day:
    """One simulated day, all 83 regions, reduced to the counts the checks need (also timed)."""
    d = Day()
    entered: dict[tuple[str, int], int] = {}
    answered: dict[str, int] = {}
    created: dict[str, int] = {}
    moscow = zoneinfo.ZoneInfo("Europe/Moscow")
    begun = time.perf_counter()
    lines = list(generate(SimConfig(start_ms=DAY_START, seed=2024, duration_s=86400.0)))
    d.seconds = time.perf_counter() - begun
    d.events = len(lines)
    for _, value in lines:
        e: dict[str, Any] = orjson.loads(value)
        kind, ts, channel = e["type"], parse_rfc3339(e["ts"]), e["channel"]
        d.per_region[e["region"]] += 1
        if kind == "contact.started":
            d.started[channel] += 1
            if e["region"] == "RU-MOW":
                d.moscow_hours[time_of_day(ts, moscow)] += 1
        elif kind == "queue.entered":
            entered[(e["contact_id"], e.get("visit", 1))] = ts
        elif kind == "queue.left":
            d.left[(channel, e["reason"])] += 1
            if e["reason"] == "answered":
                d.answered_waits[channel].append((ts - entered[(e["contact_id"], e.get("visit", 1))]) / 1000)
                answered[e["contact_id"]] = ts
        elif kind == "contact.ended":
            d.ended[(channel, e["handled_by"])] += 1
            if e["handled_by"] != "none":
                d.first_line[e["resolved"] and not e.get("escalated", False)] += 1
            if "first_contact" in e:
                d.first_contact[e["first_contact"]] += 1
            if channel == "voice" and e["handled_by"] == "agent" and e["contact_id"] in answered:
                d.handles.append((ts - answered[e["contact_id"]]) / 1000)
        elif kind == "survey.responded" and "csat" in e:
            d.csat[e["csat"]] += 1
        elif kind == "ticket.created":
            created[e["ticket_id"]] = ts
        elif kind == "ticket.resolved":
            d.ticket_hours.append((ts - created[e["ticket_id"]]) / 3_600_000)
    return d


def time_of_day(ts_ms: int, tz: zoneinfo.ZoneInfo) -> int:
    return dt.datetime.fromtimestamp(ts_ms / 1000, tz).hour


def test_volume_and_speed(day: Day) -> None:
    contacts = sum(day.started.values())
    assert 0.85 * model.CONTACTS_PER_DAY < contacts < 1.15 * model.CONTACTS_PER_DAY
    assert 300_000 < day.events < 800_000
    assert day.seconds < 30, f"a simulated day took {day.seconds:.1f} s"


def test_online_share_and_bots(day: Day) -> None:
    online = sum(day.started[c] for c in ONLINE)
    assert online / sum(day.started.values()) == pytest.approx(model.ONLINE_SHARE, rel=0.1)
    bot_handled = sum(day.ended[(c, "bot")] for c in ONLINE)
    assert bot_handled / online == pytest.approx(50 / 310, abs=0.025)


def test_voice_wait_and_handle(day: Day) -> None:
    waits = day.answered_waits["voice"]
    assert 5 < sum(waits) / len(waits) <= model.VOICE_WAIT_AVG_MAX_S
    assert sum(day.handles) / len(day.handles) == pytest.approx(model.VOICE_HANDLE_AVG_S, rel=0.1)
    voice_left = sum(n for (c, _), n in day.left.items() if c == "voice")
    assert 0.01 < day.left[("voice", "abandoned")] / voice_left < 0.08


def test_chat_answered_fast_and_rarely_abandoned(day: Day) -> None:
    waits = day.answered_waits["chat"]
    assert sum(w <= 20 for w in waits) / len(waits) >= 0.96
    chat_left = sum(n for (c, _), n in day.left.items() if c == "chat")
    assert day.left[("chat", "abandoned")] / chat_left == pytest.approx(model.CHAT_ABANDON_SHARE, abs=0.007)


def test_resolution_ratings_and_tickets(day: Day) -> None:
    assert day.first_line[True] / sum(day.first_line.values()) == pytest.approx(0.985, abs=0.006)
    assert day.first_contact[True] / sum(day.first_contact.values()) == pytest.approx(0.90, abs=0.02)
    assert day.csat[5] / sum(day.csat.values()) == pytest.approx(0.95, abs=0.02)
    assert len(day.ticket_hours) > 1000 and max(day.ticket_hours) <= 72
    # tickets resolved within the day are biased short; the 24 h share of all of them is the model's 80 %
    assert sum(h <= 24 for h in day.ticket_hours) / len(day.ticket_hours) > 0.8


def test_traffic_follows_region_weights(day: Day) -> None:
    cat = regions.catalogue()
    total_weight = sum(r.weight for r in cat.values())
    total = sum(day.per_region.values())
    assert set(day.per_region) == set(cat)
    for code in ("RU-MOW", "RU-MOS", "RU-SPE", "RU-KDA", "RU-SVE", "RU-CHE"):
        assert day.per_region[code] / total == pytest.approx(cat[code].weight / total_weight, rel=0.12), code
    assert day.per_region["RU-MOW"] > 50 * day.per_region["RU-CHU"]


def test_daily_seasonality_in_local_time(day: Day) -> None:
    night = day.moscow_hours[3] + day.moscow_hours[4]
    morning = day.moscow_hours[10] + day.moscow_hours[11]
    assert night * 8 < morning


def test_ticket_model_is_80_percent_within_a_day() -> None:
    q = model.QUEUES["email"]
    x = 24 * 3600 / q.wait_scale_s
    assert q.wait_shape == 2 and 1 - math.exp(-x) * (1 + x) == pytest.approx(model.TICKET_WITHIN_24H_SHARE, abs=0.01)
