"""When the publisher builds a round, and when it may send a record's key again.

A round builds every record of the worker (all of them change whenever the watermark moves), which
takes a tenth of a second to half a second on a busy one, then sends them. Faust's timer slept its
interval after each round, so rounds ran an interval plus a round apart, and a change waited up to
that long for the next one to begin. Rounds are now timed by their sends: the next build begins an
interval after this round began sending, less the time this build took, so that it is done about
when its keys may be sent again. The spec's "at most once a second per key" is kept per key: a
build faster than the one before, or a key further ahead in its round, waits the difference.
Rounds stop while stage two's partitions are handed over to other workers (`Handover`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

#: a round busy for d seconds is followed by a pause of at least this many times d: while stage one
#: reads a backlog (publishing then takes at most a seventh of the event loop: records of a backlog
#: show the past, and reading it sooner matters more; Faust's timer, which rounded the pause up to its
#: next tick, left publishing 11-20 % of the loop with rounds of 0.2-0.5 s), and while it keeps up
#: (at most half)
PAUSE_BACKLOG = 6.0
PAUSE_STEADY = 1.0


@dataclasses.dataclass(frozen=True)
class Round:
    """The moments of one publishing round (monotonic seconds)."""

    started: float  # its build began
    built: float  # its records, breach transitions and rollup upserts were made
    sending: float  # its first message was sent (after any wait for the spacing of its keys)
    finished: float  # its last message was sent

    @property
    def busy_s(self) -> float:
        """The time the round held the event loop: building and sending, not waiting."""
        return (self.built - self.started) + (self.finished - self.sending)


def next_start(last: Round, interval_s: float, backlogged: bool) -> float:
    """When the next round begins: so that a build as long as the last one ends an interval after
    the last round began sending; after a long round, not before a pause in proportion to it."""
    pause = PAUSE_BACKLOG if backlogged else PAUSE_STEADY
    return max(last.sending + interval_s - (last.built - last.started), last.finished + pause * last.busy_s)


class KeySpacing:
    """The last send of each record key, so that no key is sent twice within the interval.

    Holds one time per key the worker has published (regions x channels x windows: thousands)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.last_sent: dict[bytes, float] = {}

    def wait(self, key: bytes, now: float) -> float:
        """Seconds until the key may be sent again (0 when it may now)."""
        return max(0.0, self.last_sent.get(key, -math.inf) + self.interval_s - now)

    def sent(self, key: bytes, now: float) -> None:
        self.last_sent[key] = now


class Handover:
    """Holds publishing rounds while stage two's partitions are being handed over.

    Between the revoke and the assignment of a rebalance, a partition this worker is losing may
    already be read by its new owner. A breach judged here then would reach the alerts topic after
    the new owner read it back, and the new owner would never publish its recovery; a record built
    here then could follow the new owner's newer one on the metrics topic. Kafka assigns no
    partition before every member's revoke has returned (the eager protocol aiokafka follows), so
    `begin`, called on revoke, waits for a round in progress to end and its messages to be
    written (the producer's acks are "all": written means readable), and no round starts until
    `end`, called once the new assignment is taken over."""

    def __init__(self, flush: Callable[[], Awaitable[None]]) -> None:
        self._flush = flush
        self._open = asyncio.Event()
        self._open.set()
        self._round = asyncio.Lock()
        #: when the handover under way began (monotonic seconds), None when there is none
        self._began: float | None = None

    async def run_round(self, publish: Callable[[], Awaitable[T]]) -> T:
        """Run one round, once no handover is under way."""
        while True:
            await self._open.wait()
            async with self._round:
                if self._open.is_set():
                    return await publish()

    async def begin(self) -> None:
        self._open.clear()
        if self._began is None:
            self._began = time.monotonic()
        async with self._round:
            await self._flush()

    def end(self) -> float | None:
        """Let rounds run again; the seconds they were held (None when no handover was under way)."""
        self._open.set()
        began, self._began = self._began, None
        return None if began is None else time.monotonic() - began
