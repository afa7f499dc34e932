"""Per-contact and per-ticket state: once-only guards, pairing, duplicate detection.

State is kept in plain dicts inside mappings the caller provides (in a worker, a pair per events
partition). Every event of a contact is keyed by its contact id (tickets by ticket id), so one
partition owns all state that an event touches.

Contact state: ``{"ids": [...], "last": ts, "started": 1, "bot": 1, "survey": 1,
"v": {visit number: [entered ts, left ts, reason, wait µs, region, channel]}`` (None where not yet known:
the leave's fields until it arrives, the wait until both ends are known), ``"end": [ts, region,
channel, handled_by, handle µs or None], "h": [visit, handle µs]}``. A visit is one flat list, not
nested containers: every container is one more object for the cyclic garbage collector.
Ticket state: ``{"ids": [...], "last": ts, "c": [ts, region, channel], "r": [ts, region, channel]}``.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from streams.core import facts as F
from streams.core.events import EVENT_CLASSES, Event, Rejected
from streams.core.expiry import MinuteIndex
from streams.core.timefmt import MINUTE_MS

State = dict[str, Any]
#: slots of a visit's list
ENTERED, LEFT, REASON, WAIT, REGION, CHANNEL = range(6)


class Tracker:
    """Turns validated events into facts. Returns None for a duplicate; raises Rejected on conflict."""

    def __init__(self, contacts: MutableMapping[str, State], tickets: MutableMapping[str, State],
                 horizon_ms: int, ticket_retention_ms: int) -> None:
        self.contacts = contacts
        self.tickets = tickets
        self.horizon_ms = horizon_ms
        self.ticket_retention_ms = ticket_retention_ms
        self._contact_expiry = MinuteIndex()
        self._ticket_expiry = MinuteIndex()
        by_type = {
            "contact.started": self._contact_started,
            "bot.started": _no_fact,
            "bot.ended": self._bot_ended,
            "queue.entered": self._queue_entered,
            "queue.left": self._queue_left,
            "contact.transferred": _no_fact,
            "contact.ended": self._contact_ended,
            "survey.responded": self._survey,
            "ticket.created": self._ticket_created,
            "ticket.resolved": self._ticket_resolved,
        }
        #: event class -> (handler, is a ticket event): keyed by class, since reading the `type` and
        #: `ticket` class attributes through an event is an unspecialised lookup in CPython 3.11
        self._dispatch = {cls: (by_type[kind], cls.ticket) for kind, cls in EVENT_CLASSES.items()}

    # -- entry point -------------------------------------------------------------------------

    def process(self, event: Event) -> list[F.Fact] | None:
        handler, is_ticket = self._dispatch[type(event)]
        if is_ticket:
            store, key = self.tickets, event.ticket_id  # type: ignore[attr-defined]
        else:
            store, key = self.contacts, event.contact_id  # type: ignore[attr-defined]
        event_id, ts = event.event_id, event.ts
        state = store.get(key)
        if state is None:
            # stored before the handler runs: a conflict's id stays too, so its duplicates are duplicates
            state = store[key] = {"ids": [event_id], "last": ts}
            if not is_ticket:
                self._contact_expiry.add((ts + self.horizon_ms) // MINUTE_MS, key)
        else:
            ids = state["ids"]
            if event_id in ids:
                return None
            ids.append(event_id)
        out: list[F.Fact] = []
        handler(event, state, out)
        if ts > state["last"]:
            state["last"] = ts
        if is_ticket:  # a ticket's expiry moves when it is created or resolved
            self._index(True, key, state)
        return out

    # -- contacts ----------------------------------------------------------------------------

    def _once(self, event: Event, state: State, slot: str, what: str) -> None:
        if slot in state:
            raise _conflict(event, what)
        state[slot] = 1

    def _contact_started(self, event: Event, state: State, out: list[F.Fact]) -> None:
        self._once(event, state, "started", "the start")
        out.append((F.CONTACT, event.region, event.channel, event.ts))

    def _bot_ended(self, event: Event, state: State, out: list[F.Fact]) -> None:
        self._once(event, state, "bot", "the bot session")
        out.append((F.BOT, event.region, event.channel, event.ts, event.outcome))

    def _survey(self, event: Event, state: State, out: list[F.Fact]) -> None:
        self._once(event, state, "survey", "the survey")
        out.append((F.SURVEY, event.region, event.channel, event.ts, event.csat, event.nps))

    def _queue_entered(self, event: Event, state: State, out: list[F.Fact]) -> None:
        number = event.visit
        visit = _visit_of(state, number)
        if visit[ENTERED] is not None:
            raise _conflict(event, f"queue entry of visit {number}")
        ts = visit[ENTERED] = event.ts
        key = F.visit_key(event.contact_id, number)
        left = visit[LEFT]
        out.append((F.OFFERED, event.region, event.channel, ts, key, left is None))
        if left is not None and visit[WAIT] is None:
            wait_us = visit[WAIT] = max(0, left - ts) * 1000
            out.append((F.VISIT, visit[REGION], visit[CHANNEL], left, key, visit[REASON], wait_us))
            if visit[REASON] == "answered":
                self._pair_handle(state, out)

    def _queue_left(self, event: Event, state: State, out: list[F.Fact]) -> None:
        number = event.visit
        visit = _visit_of(state, number)
        if visit[LEFT] is not None:
            raise _conflict(event, f"queue leave of visit {number}")
        ts, wait_s, entered = event.ts, event.wait_s, visit[ENTERED]
        wait_us: int | None = round(wait_s * 1_000_000) if wait_s is not None else None
        if wait_us is None and entered is not None:
            wait_us = max(0, ts - entered) * 1000
        reason = event.reason
        visit[LEFT:] = ts, reason, wait_us, event.region, event.channel
        if wait_us is not None:
            key = F.visit_key(event.contact_id, number)
            out.append((F.VISIT, event.region, event.channel, ts, key, reason, wait_us))
        if reason == "answered":
            self._pair_handle(state, out)

    def _contact_ended(self, event: Event, state: State, out: list[F.Fact]) -> None:
        if "end" in state:
            raise _conflict(event, "the end")
        handled_by = event.handled_by
        handle_s = event.handle_s
        handle_us = round(handle_s * 1_000_000) if handle_s is not None else None
        state["end"] = [event.ts, event.region, event.channel, handled_by, handle_us]
        out.append((F.ENDED, event.region, event.channel, event.ts, event.resolved, handled_by,
                    event.escalated, event.first_contact))
        if handled_by != "agent":
            return
        if handle_us is not None:
            out.append((F.HANDLE, event.region, event.channel, event.ts, handle_us, 1))
        else:
            self._pair_handle(state, out)

    def _pair_handle(self, state: State, out: list[F.Fact]) -> None:
        """Handle time = end − leave of the last answered visit; re-paired if a later visit shows up."""
        end = state.get("end")
        if end is None or end[3] != "agent" or end[4] is not None:
            return
        visits = state.get("v")
        if visits is None:
            return
        number = 0  # visit numbers start at 1
        for candidate, visit in visits.items():
            if candidate > number and visit[REASON] == "answered":
                number = candidate
        if not number:
            return
        handle_us = max(0, end[0] - visits[number][LEFT]) * 1000
        applied = state.get("h")
        if applied == [number, handle_us]:
            return
        if applied is not None:
            out.append((F.HANDLE, end[1], end[2], end[0], applied[1], -1))
        state["h"] = [number, handle_us]
        out.append((F.HANDLE, end[1], end[2], end[0], handle_us, 1))

    # -- tickets -----------------------------------------------------------------------------

    def _ticket_created(self, event: Event, state: State, out: list[F.Fact]) -> None:
        if "c" in state:
            raise _conflict(event, "the creation")
        state["c"] = [event.ts, event.region, event.channel]
        resolved = state.get("r")
        out.append((F.TICKET_CREATED, event.region, event.channel, event.ts, event.ticket_id, resolved is None))
        if resolved is not None:
            out.append((F.TICKET_RESOLVED, resolved[1], resolved[2], resolved[0], event.ticket_id,
                        max(0, resolved[0] - event.ts)))

    def _ticket_resolved(self, event: Event, state: State, out: list[F.Fact]) -> None:
        if "r" in state:
            raise _conflict(event, "the resolution")
        state["r"] = [event.ts, event.region, event.channel]
        created = state.get("c")
        if created is not None:
            out.append((F.TICKET_RESOLVED, event.region, event.channel, event.ts, event.ticket_id,
                        max(0, event.ts - created[0])))

    def open_tickets(self, created_before_ms: int) -> list[tuple[str, str, str, int]]:
        """(region, channel, ticket id, creation time) of this tracker's tickets still open that were
        created before the given time."""
        found = []
        for key in self._ticket_keys():
            state = self.tickets.get(key)
            if state is not None and "r" not in state and "c" in state and state["c"][0] < created_before_ms:
                created, region, channel = state["c"]
                found.append((region, channel, key, created))
        return found

    def _ticket_keys(self) -> list[str]:
        filed = (key for items in self._ticket_expiry.items.values() for key in items)
        return list(dict.fromkeys(filed))

    # -- release -----------------------------------------------------------------------------

    def _expires_at(self, is_ticket: bool, state: State) -> int:
        if is_ticket and "c" in state and "r" not in state:
            return max(state["c"][0] + self.ticket_retention_ms, state["last"] + self.horizon_ms)
        return state["last"] + self.horizon_ms

    def _index(self, is_ticket: bool, key: str, state: State) -> None:
        index = self._ticket_expiry if is_ticket else self._contact_expiry
        index.add(self._expires_at(is_ticket, state) // MINUTE_MS, key)

    def release(self, watermark_ms: int) -> int:
        """Forget state that can no longer change: nothing older than the horizon can arrive."""
        released = 0
        for is_ticket, store, index in ((False, self.contacts, self._contact_expiry),
                                        (True, self.tickets, self._ticket_expiry)):
            for key in index.pop_before(watermark_ms // MINUTE_MS):
                state = store.get(key)
                if state is None:
                    continue
                if self._expires_at(is_ticket, state) < watermark_ms:
                    del store[key]
                    released += 1
                else:  # it changed since it was filed: file it again under its new expiry
                    self._index(is_ticket, key, state)
        return released


def _visit_of(state: State, number: int) -> list[Any]:
    """The state of one queue visit, created empty on its first event."""
    visits = state.get("v")
    if visits is None:
        visits = state["v"] = {}
    visit = visits.get(number)
    if visit is None:
        visit = visits[number] = [None] * (CHANNEL + 1)
    return visit


def _conflict(event: Event, what: str) -> Rejected:
    return Rejected("conflict", None, f"{what} of {event.key!r} was already counted")


def _no_fact(event: Event, state: State, out: list[F.Fact]) -> None:
    """bot.started and contact.transferred are accepted and deduplicated but count nothing."""
