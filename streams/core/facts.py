"""Facts: what the contact tracker has established, ready to be counted per region.

A fact is a plain tuple `(kind, region, channel, ts_ms, *payload)` so it costs little to build,
and serialises to a JSON array for the `cc.facts` topic. Waits and handle times are integer
microseconds, ticket resolution times milliseconds.

| kind              | payload                                                   |
|-------------------|-----------------------------------------------------------|
| `contact`         | —                                                         |
| `offered`         | visit key, still waiting (bool)                           |
| `visit`           | visit key, reason, wait µs                                |
| `ended`           | resolved, handled_by, escalated, first_contact (or None)  |
| `handle`          | handle µs, +1 to add or -1 to withdraw an earlier pairing |
| `bot`             | outcome                                                   |
| `survey`          | csat (or None), nps (or None)                             |
| `ticket_created`  | ticket id, still open (bool)                              |
| `ticket_resolved` | ticket id, resolution ms                                  |
"""

from __future__ import annotations

from typing import Any

Fact = tuple[Any, ...]

CONTACT = "contact"
OFFERED = "offered"
VISIT = "visit"
ENDED = "ended"
HANDLE = "handle"
BOT = "bot"
SURVEY = "survey"
TICKET_CREATED = "ticket_created"
TICKET_RESOLVED = "ticket_resolved"

KINDS = frozenset({CONTACT, OFFERED, VISIT, ENDED, HANDLE, BOT, SURVEY, TICKET_CREATED, TICKET_RESOLVED})


def visit_key(contact_id: str, visit: int) -> str:
    """Identity of one queue visit across the tracker and the live waiting state."""
    return f"{contact_id}#{visit}"
