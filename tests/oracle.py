"""An independent, brute-force model of the metrics spec, and small helpers to drive the core.

The oracle is written from `events.md` / `metrics.md` only, never from `streams.core`: it keeps
every accepted event in a list and computes each number by filtering that list (no buckets, no
bins, no incremental state), so it is slow and obviously right. Time zones are fixed UTC offsets
(Russia keeps no daylight saving time since 2014), so `today` does not reuse the core's zone code.

It handles valid events only (the property strategies generate no invalid ones); duplicates are
dropped by `event_id`, and a second event for a once-only slot is ignored (the earlier in event
time counts, as replay decides).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams import config
from streams.core.engine import Engine

MIN_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
HORIZON_MS = 26 * HOUR_MS
SHORT_ABANDON_S = 5.0
SLA_S = {"voice": 40, "chat": 20, "messenger": 60, "app": 20, "social": 900, "email": 86400,
         "voice_assistant": 20}
ALL = "ALL"

#: UTC offset (hours) of the regions the tests use; `ALL` is Moscow (spec: Windows)
UTC_OFFSET_H = {
    "RU-KGD": 2, "RU-MOW": 3, "RU-SPE": 3, "RU-SAM": 4, "RU-CHE": 5, "RU-SVE": 5, "RU-OMS": 6,
    "RU-NVS": 7, "RU-KYA": 7, "RU-IRK": 8, "RU-ZAB": 9, "RU-PRI": 10, "RU-MAG": 11, "RU-KAM": 12,
    ALL: 3,
}

WINDOWS = ("5m", "15m", "60m", "today")

#: the record of the spec's example, field by field and in its order
RECORD_FIELDS = (
    "schema", "region", "channel", "window", "window_start", "window_end", "as_of", "sla_threshold_s",
    "contacts", "offered", "answered", "abandoned", "short_abandoned",
    "answered_within_sla", "service_level", "abandon_rate",
    "wait_avg_s", "wait_p50_s", "wait_p90_s", "wait_p95_s", "wait_max_s",
    "ended", "resolved", "resolution_rate",
    "resolved_first_contact", "fcr_known", "fcr_rate",
    "escalated", "first_line_rate",
    "bot_handled", "agent_handled", "bot_share",
    "bot_sessions", "bot_resolved", "bot_handoffs", "bot_abandoned", "bot_containment",
    "handle_avg_s",
    "csat_responses", "csat_avg", "csat_top_box", "csat_top2",
    "nps_responses", "nps",
    "tickets_created", "tickets_resolved", "ticket_24h_rate", "ticket_72h_rate",
    "waiting_now", "oldest_waiting_s", "waiting_over_sla",
    "tickets_open", "tickets_open_over_72h",
)
COUNT_FIELDS = (
    "contacts", "offered", "answered", "abandoned", "short_abandoned", "answered_within_sla",
    "ended", "resolved", "resolved_first_contact", "fcr_known", "escalated",
    "bot_handled", "agent_handled", "bot_sessions", "bot_resolved", "bot_handoffs", "bot_abandoned",
    "csat_responses", "nps_responses", "tickets_created", "tickets_resolved",
    "waiting_now", "waiting_over_sla", "tickets_open", "tickets_open_over_72h",
)
RATIO_FIELDS = (
    "service_level", "abandon_rate", "resolution_rate", "fcr_rate", "first_line_rate", "bot_share",
    "bot_containment", "csat_avg", "csat_top_box", "csat_top2", "nps", "ticket_24h_rate", "ticket_72h_rate",
)
SECONDS_FIELDS = ("wait_avg_s", "wait_max_s", "handle_avg_s", "oldest_waiting_s")
PERCENTILES = (("wait_p50_s", 50), ("wait_p90_s", 90), ("wait_p95_s", 95))


# -- time ---------------------------------------------------------------------------------------

def ms(text: str) -> int:
    """Epoch ms of an RFC 3339 text (with the standard library, not the core's parser)."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return round(moment.timestamp() * 1000)


def iso(epoch_ms: int, offset_h: int = 0) -> str:
    """RFC 3339 with milliseconds in the given UTC offset."""
    tz = dt.timezone(dt.timedelta(hours=offset_h))
    moment = dt.datetime.fromtimestamp(epoch_ms // 1000, tz=tz) + dt.timedelta(milliseconds=epoch_ms % 1000)
    text = moment.isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def event_ms(ts: Any) -> int:
    return ts if isinstance(ts, int) else ms(ts)


def local_midnight_ms(region: str, as_of_ms: int) -> int:
    offset = UTC_OFFSET_H[region] * HOUR_MS
    return (as_of_ms + offset) // DAY_MS * DAY_MS - offset


def window_bounds(window: str, region: str, as_of_ms: int) -> tuple[int, int]:
    """[start, end) of a window in epoch ms, straight from the spec's table."""
    m = as_of_ms // MIN_MS * MIN_MS
    end = m + MIN_MS
    if window == "today":
        return local_midnight_ms(region, as_of_ms), end
    n = int(window[:-1])
    return m - (n - 1) * MIN_MS, end


# -- building events ----------------------------------------------------------------------------

_ids = itertools.count(1)


def ev(kind: str, ts: int | str, contact: str | None = "c1", region: str = "RU-MOW", channel: str = "voice",
       event_id: str | None = None, **extra: Any) -> dict[str, Any]:
    """One event of the spec; `contact=None` leaves `contact_id` out (ticket events)."""
    body: dict[str, Any] = {"event_id": f"e{next(_ids)}" if event_id is None else event_id, "type": kind, "ts": ts,
                            "region": region, "channel": channel}
    if contact is not None:
        body["contact_id"] = contact
    body.update(extra)
    return body


def line(event: Mapping[str, Any]) -> bytes:
    return orjson.dumps(event)


# -- driving the core under test ----------------------------------------------------------------

def default_settings(**env: str) -> config.Settings:
    return config.load(None, env=env)


def run_engine(events: Iterable[Mapping[str, Any] | bytes], *, as_of: int | None = None, reject_late: bool = False,
               clock_ms: int | None = None, settings: config.Settings | None = None,
               ) -> tuple[Engine, dict[tuple[str, str, str], dict[str, Any]], list[dict[str, Any]]]:
    """Feed events to an Engine in the given order; records keyed by (region, channel, window)
    and the dead letters it produced."""
    letters: list[dict[str, Any]] = []
    clock = clock_ms if clock_ms is not None else ms("2099-01-01T00:00:00Z")
    engine = Engine(settings or default_settings(), reject_late=reject_late,
                    dead_letters=lambda raw, letter: letters.append(dict(letter)), clock=lambda: clock)
    for item in events:
        engine.process_raw(item if isinstance(item, bytes) else line(item))
    records = {(r["region"], r["channel"], r["window"]): r for r in engine.records(as_of)}
    return engine, records, letters


# -- the oracle ---------------------------------------------------------------------------------

@dataclass
class Fact:
    """One countable thing at one time: `what` names it, `data` carries its values."""

    what: str
    region: str
    channel: str
    ts: int
    data: dict[str, Any] = field(default_factory=dict)


def nearest_rank(values: list[float], percent: int) -> float:
    ordered = sorted(values)
    rank = max(1, -(-percent * len(ordered) // 100))
    return ordered[rank - 1]


class Oracle:
    """All numbers of the spec at `as_of` for a list of valid events."""

    def __init__(self, events: Iterable[Mapping[str, Any]], as_of_ms: int | None = None,
                 short_abandon_s: float = SHORT_ABANDON_S) -> None:
        seen: set[str] = set()
        unique = []
        for event in events:
            if event["event_id"] not in seen:
                seen.add(event["event_id"])
                unique.append(dict(event, _ms=event_ms(event["ts"])))
        self.as_of = as_of_ms if as_of_ms is not None else max((e["_ms"] for e in unique), default=0)
        visible = sorted((e for e in unique if e["_ms"] <= self.as_of), key=lambda e: (e["_ms"], e["event_id"]))
        self.events = _first_of_each_slot(visible)
        self.short_abandon_s = short_abandon_s
        self.facts = self._facts()

    # facts, each found by filtering the event list

    def _of(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind and all(e.get(k) == v for k, v in match.items())]

    def _wait_s(self, left: dict[str, Any]) -> float | None:
        if left.get("wait_s") is not None:
            return float(left["wait_s"])
        entered = [e for e in self._of("queue.entered", contact_id=left["contact_id"])
                   if e.get("visit", 1) == left.get("visit", 1)]
        if not entered:
            return None
        return (left["_ms"] - entered[0]["_ms"]) / 1000

    def _handle_s(self, end: dict[str, Any]) -> float | None:
        if end.get("handle_s") is not None:
            return float(end["handle_s"])
        answered = [e for e in self._of("queue.left", contact_id=end["contact_id"]) if e["reason"] == "answered"]
        if not answered:
            return None
        last = max(answered, key=lambda e: e.get("visit", 1))
        return (end["_ms"] - last["_ms"]) / 1000

    def _facts(self) -> list[Fact]:
        out: list[Fact] = []

        def add(what: str, e: dict[str, Any], **data: Any) -> None:
            out.append(Fact(what, e["region"], e["channel"], e["_ms"], data))

        for e in self._of("contact.started"):
            add("contact", e)
        for e in self._of("queue.entered"):
            add("offered", e)
        for e in self._of("queue.left"):
            wait = self._wait_s(e)
            if wait is not None:
                add("visit", e, reason=e["reason"], wait=wait)
        for e in self._of("contact.ended"):
            add("ended", e, resolved=e["resolved"], handled_by=e["handled_by"],
                escalated=bool(e.get("escalated", False)), first_contact=e.get("first_contact"))
            if e["handled_by"] == "agent":
                handle = self._handle_s(e)
                if handle is not None:
                    add("handle", e, seconds=handle)
        for e in self._of("bot.ended"):
            add("bot", e, outcome=e["outcome"])
        for e in self._of("survey.responded"):
            add("survey", e, csat=e.get("csat"), nps=e.get("nps"))
        for e in self._of("ticket.created"):
            add("ticket_created", e)
        for e in self._of("ticket.resolved"):
            created = self._of("ticket.created", ticket_id=e["ticket_id"])
            if created:
                add("ticket_resolved", e, hours=(e["_ms"] - created[0]["_ms"]) / HOUR_MS)
        return out

    # keys and records

    def pairs(self) -> set[tuple[str, str]]:
        """(region, channel) pairs with data: a fact in the retention horizon or a live value."""
        since = (self.as_of - HORIZON_MS) // MIN_MS * MIN_MS
        found = {(f.region, f.channel) for f in self.facts if f.ts >= since}
        for region, channel in {(e["region"], e["channel"]) for e in self.events}:
            live = self.live(region, channel)
            if live["waiting_now"] or live["tickets_open"]:
                found.add((region, channel))
        return found

    def keys(self) -> set[tuple[str, str]]:
        out = set()
        for region, channel in self.pairs():
            out |= {(region, channel), (region, ALL), (ALL, channel), (ALL, ALL)}
        return out

    def live(self, region: str, channel: str) -> dict[str, Any]:
        def wanted(e: dict[str, Any]) -> bool:
            return region in (ALL, e["region"]) and channel in (ALL, e["channel"])

        waiting = []
        for e in self._of("queue.entered"):
            left = [x for x in self._of("queue.left", contact_id=e["contact_id"])
                    if x.get("visit", 1) == e.get("visit", 1)]
            if wanted(e) and not left and e["_ms"] >= self.as_of - HORIZON_MS:
                waiting.append(e)
        resolved_ids = {e["ticket_id"] for e in self._of("ticket.resolved")}
        open_tickets = [e for e in self._of("ticket.created") if wanted(e) and e["ticket_id"] not in resolved_ids]
        return {
            "waiting_now": len(waiting),
            "oldest_waiting_s": (self.as_of - min(e["_ms"] for e in waiting)) / 1000 if waiting else None,
            "waiting_over_sla": sum(1 for e in waiting if self.as_of - e["_ms"] > SLA_S[e["channel"]] * 1000),
            "tickets_open": len(open_tickets),
            "tickets_open_over_72h": sum(1 for e in open_tickets if self.as_of - e["_ms"] > 72 * HOUR_MS),
        }

    def record(self, region: str, channel: str, window: str) -> dict[str, Any]:
        """Every count, ratio and live value of one record, computed by filtering the facts."""
        start, end = window_bounds(window, region, self.as_of)
        facts = [f for f in self.facts if region in (ALL, f.region) and channel in (ALL, f.channel)
                 and start <= f.ts < end]

        def of(what: str, **match: Any) -> list[Fact]:
            return [f for f in facts if f.what == what and all(f.data.get(k) == v for k, v in match.items())]

        answered_waits = [f.data["wait"] for f in of("visit", reason="answered")]
        abandoned = of("visit", reason="abandoned")
        short = [f for f in abandoned if f.data["wait"] < self.short_abandon_s]
        within = [f for f in of("visit", reason="answered") if f.data["wait"] <= SLA_S[f.channel]]
        ended = of("ended")
        resolved = of("ended", resolved=True)
        fcr_known = [f for f in resolved if f.data["first_contact"] is not None]
        first_line = [f for f in resolved if not f.data["escalated"]]
        bots = of("bot")
        csat = [f.data["csat"] for f in of("survey") if f.data["csat"] is not None]
        nps = [f.data["nps"] for f in of("survey") if f.data["nps"] is not None]
        handles = [f.data["seconds"] for f in of("handle")]
        tickets_resolved = of("ticket_resolved")
        answered, long_abandoned = len(answered_waits), len(abandoned) - len(short)
        record: dict[str, Any] = {
            "window_start": start, "window_end": end,
            "contacts": len(of("contact")), "offered": len(of("offered")), "answered": answered,
            "abandoned": len(abandoned), "short_abandoned": len(short), "answered_within_sla": len(within),
            "service_level": _ratio(len(within), answered + long_abandoned),
            "abandon_rate": _ratio(long_abandoned, answered + long_abandoned),
            "wait_avg_s": _ratio(math.fsum(answered_waits), answered),
            "wait_max_s": max(answered_waits) if answered_waits else None,
            "ended": len(ended), "resolved": len(resolved), "resolution_rate": _ratio(len(resolved), len(ended)),
            "resolved_first_contact": sum(1 for f in fcr_known if f.data["first_contact"]),
            "fcr_known": len(fcr_known),
            "escalated": sum(1 for f in ended if f.data["escalated"]),
            "first_line_rate": _ratio(len(first_line), len(ended)),
            "bot_handled": len(of("ended", handled_by="bot")), "agent_handled": len(of("ended", handled_by="agent")),
            "bot_sessions": len(bots), "bot_resolved": len(of("bot", outcome="resolved")),
            "bot_handoffs": len(of("bot", outcome="handoff")), "bot_abandoned": len(of("bot", outcome="abandoned")),
            "handle_avg_s": _ratio(math.fsum(handles), len(handles)),
            "csat_responses": len(csat), "csat_avg": _ratio(sum(csat), len(csat)),
            "csat_top_box": _ratio(sum(1 for c in csat if c == 5), len(csat)),
            "csat_top2": _ratio(sum(1 for c in csat if c >= 4), len(csat)),
            "nps_responses": len(nps),
            "nps": _ratio(100 * (sum(1 for n in nps if n >= 9) - sum(1 for n in nps if n <= 6)), len(nps)),
            "tickets_created": len(of("ticket_created")), "tickets_resolved": len(tickets_resolved),
            "ticket_24h_rate": _ratio(sum(1 for f in tickets_resolved if f.data["hours"] <= 24), len(tickets_resolved)),
            "ticket_72h_rate": _ratio(sum(1 for f in tickets_resolved if f.data["hours"] <= 72), len(tickets_resolved)),
        }
        record["fcr_rate"] = _ratio(record["resolved_first_contact"], record["fcr_known"])
        record["bot_share"] = _ratio(record["bot_handled"], record["bot_handled"] + record["agent_handled"])
        record["bot_containment"] = _ratio(record["bot_resolved"], record["bot_sessions"])
        for name, percent in PERCENTILES:
            record[name] = nearest_rank(answered_waits, percent) if answered_waits else None
        record.update(self.live(region, channel))
        return record


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else numerator / denominator


def _slot(event: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The once-only slot an event fills (spec: each visit/end/bot end/survey/ticket counts once)."""
    kind = event["type"]
    if kind.startswith("ticket."):
        return (kind, event["ticket_id"])
    if kind in ("queue.entered", "queue.left"):
        return (kind, event["contact_id"], event.get("visit", 1))
    if kind in ("contact.started", "contact.ended", "bot.ended", "survey.responded"):
        return (kind, event["contact_id"])
    return None


def _first_of_each_slot(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    taken: set[tuple[Any, ...]] = set()
    out = []
    for event in events:
        slot = _slot(event)
        if slot is not None:
            if slot in taken:
                continue
            taken.add(slot)
        out.append(event)
    return out
