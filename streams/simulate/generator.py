"""The event generator: contacts arrive minute by minute, each one's whole story is drawn up front,
and a heap releases the events in delivery order (event time, unless a scenario delays them).

One ``random.Random(seed)`` draws the traffic and a second one the delivery scenarios, so the
same configuration gives the same bytes, and adding a delivery scenario does not change the
underlying traffic. Events after the end of the run (e.g. a ticket resolved tomorrow) are not sent.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from streams import regions as region_catalogue
from streams.core.timefmt import format_ms
from streams.encoding import dumps_sized
from streams.simulate import model
from streams.simulate.malformed import MalformedInjector
from streams.simulate.scenarios import (
    BotOutage,
    Duplicates,
    Late,
    Malformed,
    Scenario,
    Surge,
    VoiceCollapse,
)

_S = TypeVar("_S")
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
_CHANNELS = tuple(model.CHANNEL_MIX)
_CHANNEL_CUM = tuple(sum(model.CHANNEL_MIX[c] for c in _CHANNELS[: i + 1]) for i in range(len(_CHANNELS)))
_CSAT = tuple(model.CSAT_WEIGHTS)
_CSAT_W = tuple(model.CSAT_WEIGHTS.values())
_BOT_OUTCOMES = ("resolved", "handoff", "abandoned")
_WRITTEN = frozenset({"chat", "messenger", "app", "social"})
# delivery flags carried with each heap entry
_DELAYED, _DUPLICATE, _STARTS_CONTACT = 1, 2, 4


@dataclass(frozen=True)
class SimConfig:
    """What to simulate. ``duration_s=None`` runs until the consumer stops; ``count`` caps lines sent."""

    start_ms: int
    seed: int = 1
    duration_s: float | None = 3600.0
    count: int | None = None
    regions: tuple[str, ...] = ()
    volume: float = 1.0
    scenarios: tuple[Scenario, ...] = ()


def natural_contacts_per_s(codes: tuple[str, ...] = ()) -> float:
    """Mean contact arrival rate of the calibrated model for these regions (all when empty)."""
    full = region_catalogue.catalogue()
    share = sum(r.weight for r in region_catalogue.catalogue(codes).values()) / sum(
        r.weight for r in full.values())
    return model.CONTACTS_PER_DAY * share / 86400


class Simulation:
    """Iterate to get ``(deliver_ms, key, value)``; counters tell progress (events, contacts, time)."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.events = 0
        self.contacts = 0
        self.time_ms = config.start_ms
        self._rng = random.Random(config.seed)
        self._delivery_rng = random.Random(config.seed * 7919 + 17)
        self._regions = tuple(region_catalogue.catalogue(config.regions).values())
        self._zones = [region_catalogue.zone(r.code) for r in self._regions]
        self._sites = [model.SITES[sum(r.lon >= edge for edge in model.SITE_WEST_OF_LON)] for r in self._regions]
        total_weight = sum(r.weight for r in region_catalogue.catalogue().values())
        self._per_ms = [model.CONTACTS_PER_DAY * r.weight / total_weight / 86_400_000 * config.volume
                        for r in self._regions]
        self._heap: list[tuple[int, int, bytes, Any, int]] = []
        self._seq = 0
        self._next_contact = 0
        self._id_prefix = f"s{config.seed & 0xFFFFFFFF:x}-"
        self._hour: int | None = None
        self._offsets_h: list[float] = []
        self._noise: list[float] = []
        self._collapses = _all(config.scenarios, VoiceCollapse)
        self._outages = _all(config.scenarios, BotOutage)
        self._surges = _all(config.scenarios, Surge)
        self._late = next(iter(_all(config.scenarios, Late)), None)
        self._dups = next(iter(_all(config.scenarios, Duplicates)), None)
        malformed = next(iter(_all(config.scenarios, Malformed)), None)
        self._malformed = MalformedInjector(malformed.share, self._delivery_rng) if malformed else None

    # --- the run -------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[tuple[int, bytes, bytes]]:
        cfg = self.config
        end = math.inf if cfg.duration_s is None else cfg.start_ms + cfg.duration_s * 1000
        limit = math.inf if cfg.count is None else cfg.count
        heap, drng = self._heap, self._delivery_rng
        t = cfg.start_ms
        while t < end and self.events < limit:
            t1 = int(min(t + MINUTE_MS - t % MINUTE_MS, end))
            self._arrivals(t, t1)
            while heap and heap[0][0] < t1 and self.events < limit:
                deliver, _, key, payload, flags = heapq.heappop(heap)
                if self._late and not flags & _DELAYED and drng.random() < self._late.share:
                    self._push(deliver + drng.randint(1, self._late.max_ms), key, payload, flags | _DELAYED)
                    continue
                value = payload if isinstance(payload, bytes) else dumps_sized(payload)
                self.time_ms = deliver
                self.events += 1
                if flags & _STARTS_CONTACT:  # re-sent copies do not carry this flag
                    self.contacts += 1
                yield deliver, key, value
                if self._dups and not flags & _DUPLICATE and drng.random() < self._dups.share:
                    self._push(deliver + drng.randint(0, MINUTE_MS), key, value, _DUPLICATE | _DELAYED)
                if self._malformed and not isinstance(payload, bytes):
                    for bad in self._malformed.after(payload, value):
                        if self.events >= limit:
                            break
                        self.events += 1
                        yield deliver, key, bad
            t = t1
            self.time_ms = max(self.time_ms, t1 - 1)

    def _push(self, deliver: int, key: bytes, payload: Any, flags: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (deliver, self._seq, key, payload, flags))

    # --- arrivals ------------------------------------------------------------------------------

    def _refresh_hour(self, hour: int) -> None:
        """UTC offsets and per-region noise change at most hourly: compute them once an hour."""
        self._hour = hour
        moment = dt.datetime.fromtimestamp(hour * 3600, tz=dt.timezone.utc)
        self._offsets_h = [z.utcoffset(moment).total_seconds() / 3600 for z in self._zones]  # type: ignore[union-attr]
        noise_rng = random.Random(self.config.seed * 1_000_003 + hour)
        sd = model.HOURLY_NOISE_SD
        self._noise = [min(1.6, max(0.4, noise_rng.gauss(1.0, sd))) for _ in self._regions]

    def _arrivals(self, t0: int, t1: int) -> None:
        if t0 // HOUR_MS != self._hour:
            self._refresh_hour(t0 // HOUR_MS)
        mid = (t0 + t1) / 2
        utc_hour = mid / HOUR_MS % 24
        rng = self._rng
        loads, cum, total = [], [], 0.0
        surge_cums: dict[int, tuple[float, ...]] = {}
        for i, region in enumerate(self._regions):
            shape = model.profile((utc_hour + self._offsets_h[i]) % 24)
            loads.append(0.6 + 0.4 * shape)
            rate = self._per_ms[i] * shape * self._noise[i]
            factors = self._surge_factors(region.code, mid)
            if factors:
                weights = [model.CHANNEL_MIX[c] * factors.get(c, 1.0) for c in _CHANNELS]
                rate *= sum(weights)
                surge_cums[i] = tuple(sum(weights[: k + 1]) for k in range(len(weights)))
            total += rate
            cum.append(total)
        n = _poisson(rng, total * (t1 - t0))
        if not n:
            return
        indices = range(len(self._regions))
        picks = rng.choices(indices, cum_weights=cum, k=n)
        times = sorted(rng.randrange(t0, t1) for _ in range(n))
        for ts, i in zip(times, picks, strict=True):
            channel = rng.choices(_CHANNELS, cum_weights=surge_cums.get(i, _CHANNEL_CUM))[0]
            self._contact(ts, i, channel, loads[i])

    def _surge_factors(self, code: str, ts: float) -> dict[str, float]:
        factors: dict[str, float] = {}
        for s in self._surges:
            if s.span.covers(ts) and s.region in (None, code):
                factors[s.channel] = factors.get(s.channel, 1.0) * s.factor
        return factors

    # --- one contact's story -------------------------------------------------------------------

    def _contact(self, t0: int, i: int, channel: str, load: float) -> None:
        rng = self._rng
        region = self._regions[i]
        self._next_contact += 1
        cid = f"{self._id_prefix}{self._next_contact:x}"
        base: dict[str, Any] = {"contact_id": cid, "region": region.code, "channel": channel,
                                "site": self._sites[i]}
        if rng.random() < model.CUSTOMER_KEY_SHARE:
            base["customer_key"] = f"{rng.getrandbits(64):016x}"
        story = _Story(self, cid, base)
        story.add(t0, "contact.started", flags=_STARTS_CONTACT)
        if channel == "email":
            self._email(story, t0, load)
            return
        t = t0
        if rng.random() < model.BOT_ENTRY.get(channel, 0.0):
            t, outcome = self._bot(story, t, region.code, channel)
            if outcome == "resolved":
                self._end(story, t + rng.randint(200, 2000), resolved=True, handled_by="bot")
                return
            if outcome == "abandoned":
                self._end(story, t + rng.randint(200, 2000), resolved=False, handled_by="none")
                return
            t += rng.randint(500, 3000)
        elif channel == "voice":
            t += round(rng.gammavariate(2.0, 8.0) * 1000)  # IVR menu
        self._agent_path(story, t, region.code, channel, load)

    def _bot(self, story: _Story, t: int, code: str, channel: str) -> tuple[int, str]:
        rng = self._rng
        t += rng.randint(300, 3000)
        story.add(t, "bot.started")
        t += round(rng.gammavariate(2.0, 30.0) * 1000)
        handoff = next((o.handoff for o in self._outages if o.span.covers(t) and o.region in (None, code)),
                       None)
        if handoff is not None:
            weights: tuple[float, ...] = ((1 - handoff) / 4, handoff, (1 - handoff) * 3 / 4)
        else:
            table = model.VOICE_ASSISTANT_OUTCOMES if channel == "voice_assistant" else model.ONLINE_BOT_OUTCOMES
            weights = tuple(table[o] for o in _BOT_OUTCOMES)
        outcome = rng.choices(_BOT_OUTCOMES, weights=weights)[0]
        story.add(t, "bot.ended", outcome=outcome)
        return t, outcome

    def _agent_path(self, story: _Story, t: int, code: str, channel: str, load: float) -> None:
        rng = self._rng
        left, reason = self._visit(story, t, 1, code, channel, load)
        visit = 1
        if reason == "transferred":
            story.add(left, "contact.transferred", to="queue")
            visit = 2
            left, reason = self._visit(story, left, 2, code, channel, load)
        if reason in ("abandoned", "timeout", "transferred"):
            self._end(story, left + rng.randint(0, 1500), resolved=False, handled_by="none")
            return
        q = model.QUEUES[channel]
        if reason == "callback":
            handle = round(rng.gammavariate(q.handle_shape, q.handle_scale_s) * 1000)
            back = left + round(rng.gammavariate(3.0, 300.0) * 1000)
            self._end(story, back + handle, resolved=True, handled_by="agent", handle_ms=handle, force=True)
            return
        handle = round(rng.gammavariate(q.handle_shape, q.handle_scale_s) * 1000)
        if visit == 1 and rng.random() < model.AGENT_TRANSFER_SHARE:
            moved = left + handle // 2
            story.add(moved, "contact.transferred", to="queue")
            left, reason = self._visit(story, moved, 2, code, channel, load, may_overflow=False)
            if reason != "answered":
                self._end(story, left + rng.randint(0, 1500), resolved=False, handled_by="agent")
                return
            handle = round(rng.gammavariate(q.handle_shape, q.handle_scale_s) * 1000)
        end = left + handle
        draw = rng.random()
        escalated = draw < model.ESCALATE_SHARE
        resolved = not (model.ESCALATE_SHARE <= draw < model.ESCALATE_SHARE + model.UNRESOLVED_SHARE)
        if escalated:
            story.add(end - 1, "contact.transferred", to="tier2")
            self._ticket(story, end, f"T{story.cid}")
        elif rng.random() < model.EXTERNAL_TRANSFER_SHARE:
            story.add(end - 1, "contact.transferred", to="external")
        self._end(story, end, resolved=resolved, handled_by="agent", handle_ms=handle, escalated=escalated)

    def _visit(self, story: _Story, t: int, visit: int, code: str, channel: str, load: float,
               may_overflow: bool = True) -> tuple[int, str]:
        """One queue visit: draw the wait the agents would need and the customer's patience."""
        rng = self._rng
        q = model.QUEUES[channel]
        factor = load
        for c in self._collapses:
            if channel == "voice" and c.region == code and c.span.covers(t):
                factor *= c.factor
        wait = rng.gammavariate(q.wait_shape, q.wait_scale_s) * factor
        patience = rng.expovariate(1 / q.patience_s) if q.patience_s else math.inf
        draw = rng.random()
        if patience < wait:
            reason, wait = "abandoned", patience
        elif channel == "voice" and draw < model.CALLBACK_SHARE:
            reason, wait = "callback", min(wait, 30.0)
        elif channel in _WRITTEN and draw < model.TIMEOUT_SHARE:
            reason = "timeout"
        elif may_overflow and visit == 1 and draw > 1 - model.OVERFLOW_SHARE:
            reason = "transferred"
        else:
            reason = "answered"
        wait_ms = round(wait * 1000)
        number = {"visit": visit} if visit > 1 or rng.random() < 0.5 else {}
        story.add(t, "queue.entered", **number)
        left: dict[str, Any] = {"reason": reason, **number}
        if rng.random() < model.WAIT_S_GIVEN_SHARE:
            left["wait_s"] = wait_ms / 1000
        if reason == "answered":
            left["agent_id"] = f"a{rng.randrange(4000):04d}"
        story.add(t + wait_ms, "queue.left", **left)
        return t + wait_ms, reason

    def _email(self, story: _Story, t0: int, load: float) -> None:
        """A written request: a ticket opened on arrival and resolved when the agent answers."""
        ticket = f"T{story.cid}"
        story.add(t0, "ticket.created", key=ticket, ticket_id=ticket)
        left, _ = self._visit(story, t0, 1, story.base["region"], "email", 1.0, may_overflow=False)
        q = model.QUEUES["email"]
        handle = round(self._rng.gammavariate(q.handle_shape, q.handle_scale_s) * 1000)
        self._end(story, left + handle, resolved=True, handled_by="agent", handle_ms=handle)
        story.add(left + handle, "ticket.resolved", key=ticket, ticket_id=ticket, contact_id=None)

    def _ticket(self, story: _Story, t: int, ticket: str) -> None:
        """A technical ticket for the second line: answered within 72 h, 80 % within 24 h."""
        story.add(t, "ticket.created", key=ticket, ticket_id=ticket)
        q = model.QUEUES["email"]
        hours = min(self._rng.gammavariate(q.wait_shape, q.wait_scale_s) / 3600, model.TICKET_MAX_H - 0.1)
        story.add(t + round(hours * HOUR_MS), "ticket.resolved", key=ticket, ticket_id=ticket, contact_id=None)

    def _end(self, story: _Story, t: int, *, resolved: bool, handled_by: str, handle_ms: int | None = None,
             escalated: bool = False, force: bool = False) -> None:
        rng = self._rng
        fields: dict[str, Any] = {"resolved": resolved, "handled_by": handled_by}
        if escalated or rng.random() < 0.5:
            fields["escalated"] = escalated
        if resolved and rng.random() < model.FIRST_CONTACT_KNOWN_SHARE:
            fields["first_contact"] = rng.random() < model.FIRST_CONTACT_RATE
        if handle_ms is not None and (force or rng.random() < model.HANDLE_S_GIVEN_SHARE):
            fields["handle_s"] = handle_ms / 1000
        story.add(t, "contact.ended", **fields)
        if handled_by != "none" and rng.random() < model.SURVEY_SHARE:
            self._survey(story, t + round(rng.gammavariate(2.0, 60.0) * 1000))

    def _survey(self, story: _Story, t: int) -> None:
        rng = self._rng
        scores: dict[str, int] = {}
        if rng.random() < 0.9:
            scores["csat"] = rng.choices(_CSAT, weights=_CSAT_W)[0]
        if not scores or rng.random() < model.NPS_SHARE:
            scores["nps"] = 10 if rng.random() < 0.7 else rng.choice((9, 9, 9, 8, 8, 7, 6, 5, 3, 0))
        story.add(t, "survey.responded", **scores)


class _Story:
    """Collects one contact's events onto the simulation's heap, numbering their event ids."""

    __slots__ = ("base", "cid", "key", "n", "sim")

    def __init__(self, sim: Simulation, cid: str, base: dict[str, Any]) -> None:
        self.sim, self.cid, self.base, self.n = sim, cid, base, 0
        self.key = cid.encode()

    def add(self, ts: int, type_: str, *, key: str | None = None, flags: int = 0, **extra: Any) -> None:
        self.n += 1
        event = {"event_id": f"{self.cid}.{self.n}", "type": type_, "ts": format_ms(ts), **self.base, **extra}
        if extra.get("contact_id", "") is None:
            del event["contact_id"]
        self.sim._push(ts, key.encode() if key else self.key, event, flags)


def _all(scenarios: tuple[Scenario, ...], kind: type[_S]) -> list[_S]:
    return [s for s in scenarios if isinstance(s, kind)]


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw: Knuth's product method for small means, a rounded normal for large ones."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def generate(config: SimConfig) -> Iterator[tuple[bytes, bytes]]:
    """The simulated events as ``(key, value)`` pairs in delivery order."""
    for _, key, value in Simulation(config):
        yield key, value
