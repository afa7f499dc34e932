"""Keeping every assigned partition read, around Faust's rebalances.

After a rebalance Faust can leave partitions unread: messages it fetched while the streams were
suspended are dropped and never fetched again where nothing is committed (facts, rollup), and
partitions can stop being fetched altogether (faust-streaming #629). The worker reports ready,
and the regions of such a partition silently stop (or never start) updating; no consumer-lag
series shows it for the never-committed facts topic, and a region whose series never appear
cannot trip a "region silent" rule. So the worker rewinds those partitions after each rebalance
and watches its own progress: a partition whose end offset is past what its agent has handled,
and whose handled position has not moved for `stall_after_s`, is stalled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Generic, TypeVar

import faust
from faust.types import TP

log = logging.getLogger(__name__)
Partition = TypeVar("Partition")
#: a partition with messages waiting whose handled position has not moved for this long is stalled
STALL_AFTER_S = 30.0
POSITION_TIMEOUT_S = 2.0


class StallWatch(Generic[Partition]):
    """Remembers since when each partition's handled position has stood still with messages waiting."""

    def __init__(self, stall_after_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_after_s = stall_after_s
        self.clock = clock
        #: partition -> (handled position, when it was first seen there with messages waiting)
        self._standing: dict[Partition, tuple[int, float]] = {}

    def observe(self, positions: Mapping[Partition, int], ends: Mapping[Partition, int]) -> list[Partition]:
        """The partitions stalled now, given the next offset to be handled of each assigned partition
        (where reading starts, if nothing has been handled yet) and their end offsets."""
        now = self.clock()
        standing: dict[Partition, tuple[int, float]] = {}
        stalled = []
        for partition, end in ends.items():
            position = positions.get(partition, end)
            if position >= end:
                continue  # nothing waiting
            before = self._standing.get(partition)
            since = before[1] if before is not None and before[0] == position else now
            standing[partition] = (position, since)
            if now - since >= self.stall_after_s:
                stalled.append(partition)
        self._standing = standing
        return stalled

    def reset(self) -> None:
        """Forget every position: a rebalance pauses partitions on purpose while tables are restored."""
        self._standing = {}


class PartitionGuard:
    """Rewinds the partitions named by `rewind` once the rebalance in progress is over, and every few
    seconds counts, logs and seeks back the stalled ones. Seeks go back to what the agent has handled
    (the stages drop what they have already applied), in the consumer's own thread."""

    def __init__(self, app: faust.App, handled: Callable[[], Mapping[str, Mapping[int, int]]],
                 report: Callable[[int], None], stall_after_s: float = STALL_AFTER_S) -> None:
        self.app = app
        #: topic -> partition -> the next offset its agent will handle
        self.handled = handled
        self.report = report
        self.watch: StallWatch[TP] = StallWatch(stall_after_s)
        self._rewind: set[TP] = set()

    def rewind(self, partitions: Iterable[TP]) -> None:
        """Seek these back to what their agent handled once the rebalance in progress is over."""
        self._rewind = set(partitions)

    def rewind_also(self, partitions: Iterable[TP]) -> None:
        """Seek these back too at the next round (an agent found a partition started past its beginning)."""
        self._rewind |= set(partitions)

    async def keep_rewinding(self, interval_s: float) -> None:
        """For the worker's life, rewind once each rebalance is over. A loop rather than a timer: each call
        into the consumer's thread can wait for a fetch of up to a second, so a round can outlast the
        interval, which a timer reports as a warning every time."""
        while True:
            await asyncio.sleep(interval_s)
            await self.rewind_pending()

    async def rewind_pending(self) -> None:
        if self.app.rebalancing or not self._rewind:
            return
        partitions, self._rewind = self._rewind, set()
        try:
            await self._rewind_now(partitions & self.app.consumer.assignment())
        except Exception as exc:  # e.g. a new rebalance took a partition away meanwhile: try again after it
            self._retry_later(f"rewinding {len(partitions)} partitions", exc)
            if not self._rewind:  # a new rebalance names its own partitions
                self._rewind = partitions

    async def _rewind_now(self, partitions: set[TP]) -> None:
        positions = await self._positions(partitions, self.handled())
        ordered = sorted(positions.items())
        fetch_positions = await asyncio.gather(*(self._fetch_position(tp) for tp, _ in ordered))
        for (tp, position), fetched in zip(ordered, fetch_positions, strict=True):
            if fetched is not None and fetched > position:  # dropped in the rebalance, or still on their way
                log.info("partition %s/%d: fetched up to offset %d, handled up to %d; reading again from there",
                         tp.topic, tp.partition, fetched, position)
        await self._seek(positions)

    async def check(self) -> None:
        """Count, log and seek back the assigned partitions stalled now."""
        app = self.app
        if app.rebalancing or app.in_recovery:
            self.watch.reset()  # partitions are paused on purpose while tables are restored
            return
        try:
            await self._check()
        except Exception as exc:
            self._retry_later("checking for stalled partitions", exc)

    async def _check(self) -> None:
        app = self.app
        handled = self.handled()
        assigned = {tp for tp in app.consumer.assignment() if tp.topic in handled}
        if not assigned:
            self.report(0)
            return
        positions = await self._positions(assigned, handled)
        ends = await app.consumer.highwaters(*assigned)
        stalled = self.watch.observe(positions, ends)
        self.report(len(stalled))
        for tp in stalled:
            log.warning("partition %s/%d: %d messages waiting, none handled for %.0f s (%s); seeking back to "
                        "offset %d", tp.topic, tp.partition, ends[tp] - positions[tp], self.watch.stall_after_s,
                        _fetch_state(app, tp), positions[tp])
        await self._seek({tp: positions[tp] for tp in stalled})

    def _retry_later(self, what: str, exc: Exception) -> None:
        """A failed round is logged and the next one tries again: the guard never stops the worker. Expected
        while a rebalance starts or the worker stops (the consumer is asked about partitions it is losing)."""
        expected = self.app.rebalancing or self.app.should_stop
        log.log(logging.INFO if expected else logging.WARNING, "%s failed (%r); trying again", what, exc)

    async def _seek(self, positions: Mapping[TP, int]) -> None:
        """Seek in the consumer's own thread (aiokafka is not thread-safe: a seek from outside races the
        fetcher), and wait until the consumer knows the new positions."""
        if positions:
            await self.app.consumer.seek_wait(positions)

    async def _fetch_position(self, tp: TP) -> int | None:
        """Where the consumer will fetch next; None while it does not know (it waits for a reset then)."""
        try:
            return await asyncio.wait_for(self.app.consumer.position(tp), POSITION_TIMEOUT_S)
        except asyncio.TimeoutError:
            return None

    async def _positions(self, partitions: set[TP], handled: Mapping[str, Mapping[int, int]]) -> dict[TP, int]:
        """The next offset to handle: what the agent handled, but not before the partition's first offset."""
        if not partitions:
            return {}
        starts = await self.app.consumer.earliest_offsets(*partitions)
        return {tp: max(handled.get(tp.topic, {}).get(tp.partition, 0), starts.get(tp) or 0) for tp in partitions}


def _fetch_state(app: faust.App, tp: TP) -> str:
    """What Faust and aiokafka think of a partition, for the stall warning (internals, so each may be missing)."""
    consumer = app.consumer
    facts = [f"active={tp in (getattr(consumer, '_active_partitions', None) or ())}",
             f"paused={tp in getattr(consumer, '_paused_partitions', ())}",
             f"buffered={tp in getattr(consumer, '_buffered_partitions', ())}"]
    client = getattr(getattr(consumer, "_thread", None), "_consumer", None)
    if client is not None:
        try:
            state = client._subscription.subscription.assignment.state_value(tp)
            position = state.position if state.has_valid_position else None
            facts += [f"client_paused={state.paused}", f"position={position}", f"awaiting_reset={state.awaiting_reset}",
                      f"highwater={state.highwater}", f"last_fetch={state.timestamp}"]
        except Exception as exc:  # a diagnostic must not break the check
            facts.append(f"client state unknown ({exc!r})")
    return ", ".join(facts)
