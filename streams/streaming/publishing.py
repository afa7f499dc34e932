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
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

#: a round busy for d seconds is followed by a pause of at least this many times d: while stage one
#: reads a backlog (publishing then takes at most a seventh of the event loop: records of a backlog
#: show the past, and reading it sooner matters more; Faust's timer, which rounded the pause up to its
#: next tick, left publishing 11-20 % of the loop with rounds of 0.2-0.5 s), and while it keeps up
#: (at most half)
PAUSE_BACKLOG = 6.0
PAUSE_STEADY = 1.0
#: after a standstill, sends wait this many heartbeat intervals for a revoke: the heartbeat goes out as
#: soon as the loop runs again (it is overdue), and its answer and the rejoin's revoke came 0.5 s after
#: the standstill in the expelled-owner test
DOUBT_HEARTBEATS = 2


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


class RoundAbandoned(Exception):
    """A round stopped before its remaining sends, since its partitions may belong to another worker."""


class Handover:
    """Holds publishing rounds while stage two's partitions are being handed over, or may have been.

    Between the revoke and the assignment of a rebalance, a partition this worker is losing may
    already be read by its new owner. A breach judged here then would reach the alerts topic after
    the new owner read it back, and the new owner would never publish its recovery; a record built
    here then could follow the new owner's newer one on the metrics topic. Kafka assigns no
    partition before every member's revoke has returned (the eager protocol aiokafka follows), so
    `begin`, called on revoke, waits for a round in progress to end and its messages to be
    written (the producer's acks are "all": written means readable), and no round starts until
    `end`, called once the new assignment is taken over.

    A worker whose event loop stood still (a long pause of the process or its VM) may have been
    expelled from the group meanwhile, its partitions given to another worker without a revoke
    here: its heartbeat learns it at its first turn after the standstill, and only then is the
    revoke called. Heartbeats go out every `heartbeat_interval_s` while the loop runs, and the
    group expels a member after a session of several intervals without one, so a standstill
    shorter than an interval cannot have cost the membership. After a longer one, every send
    (`cleared`) waits up to `DOUBT_HEARTBEATS` intervals for the revoke; if it comes, the round is
    abandoned (`RoundAbandoned`; what it judged and did not send is read back from the alerts topic
    on assignment), and if it does not, the membership held and the sends go on. Not covered:
    messages already handed to the producer before the standstill, which it sends when the loop runs
    again."""

    def __init__(self, flush: Callable[[], Awaitable[None]], heartbeat_interval_s: float) -> None:
        self._flush = flush
        self.heartbeat_interval_s = heartbeat_interval_s
        self._open = asyncio.Event()
        self._open.set()
        #: set while a handover is under way (the inverse of `_open`, for sends in doubt to wait on)
        self._handing_over = asyncio.Event()
        self._round = asyncio.Lock()
        #: when the handover under way began (monotonic seconds), None when there is none
        self._began: float | None = None
        #: when the event loop was last seen running (`keep_time` and sends), None before `keep_time` runs
        self._last_seen: float | None = None
        #: until when sends wait for a revoke after a standstill, None when the membership is not in doubt
        self._doubt_until: float | None = None

    async def keep_time(self) -> None:
        """Watch the event loop run, four times a heartbeat interval, so that a standstill is noticed
        even when no round is under way."""
        self._last_seen = time.monotonic()
        while True:
            self._saw_loop_running()
            await asyncio.sleep(self.heartbeat_interval_s / 4)

    def _saw_loop_running(self) -> None:
        now = time.monotonic()
        if self._last_seen is None:
            return  # not watching (`keep_time` not running)
        if now - self._last_seen > self.heartbeat_interval_s and self._doubt_until is None and self._open.is_set():
            wait_s = DOUBT_HEARTBEATS * self.heartbeat_interval_s
            self._doubt_until = now + wait_s
            log.warning("the event loop stood still for %.1f s, longer than a group heartbeat (%g s): sends "
                        "wait up to %g s for the group to say whether this worker is still a member",
                        now - self._last_seen, self.heartbeat_interval_s, wait_s)
        self._last_seen = now

    async def cleared(self) -> None:
        """Before each send of a round: after a standstill, wait for the group's word; raise
        `RoundAbandoned` if a handover began meanwhile."""
        self._saw_loop_running()
        if self._doubt_until is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._handing_over.wait(), self._doubt_until - time.monotonic())
        if self._handing_over.is_set():
            log.warning("a rebalance followed the standstill: the round's remaining messages are dropped")
            raise RoundAbandoned
        if self._doubt_until is not None:
            self._doubt_until = None
            log.info("no rebalance followed the standstill: this worker is still a member, sends go on")

    async def run_round(self, publish: Callable[[], Awaitable[T]]) -> T:
        """Run one round, once no handover is under way (again, after the handover, if it was abandoned)."""
        while True:
            await self._open.wait()
            async with self._round:
                if self._open.is_set():
                    with contextlib.suppress(RoundAbandoned):
                        return await publish()

    async def begin(self) -> None:
        self._open.clear()
        self._handing_over.set()
        if self._began is None:
            self._began = time.monotonic()
        async with self._round:
            await self._flush()

    def end(self) -> float | None:
        """Let rounds run again; the seconds they were held (None when no handover was under way)."""
        self._handing_over.clear()
        self._open.set()
        self._doubt_until = None  # the assignment has just confirmed the membership
        began, self._began = self._began, None
        return None if began is None else time.monotonic() - began
