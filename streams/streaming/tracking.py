"""Stage one, keyed by contact: validate, deduplicate, track, and turn events into facts.

The events topic is this stage's changelog, as the facts topic is stage two's: its state (one
`Tracker` per events partition) is a pure function of the partition's events, so an assigned
partition is first read again from its beginning up to the committed offset (`rebuild`: state
only, nothing sent), then handled from there. No table write per event: that write, not the
arithmetic, was what a worker spent its time on (README, Performance).

Facts are gathered across events and taken (`take_facts`) as one message per facts partition:
a message per event cost the worker more than all the arithmetic. Each entry keeps its source
position (events partition, offset, index), so after a crash the events handled again past the
last commit produce the very same entries, and stage two drops those it already has.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from kafka.partitioner.default import murmur2

from streams.config import Settings
from streams.core.deadletter import dead_letter
from streams.core.engine import ACCEPTED, DUPLICATE, REJECTED, Watermark
from streams.core.events import Rejected, decode
from streams.core.facts import Fact
from streams.core.timefmt import DAY_MS, ProcessingClock, now_ms, stopped_clock
from streams.core.tracker import Tracker
from streams.regions import catalogue


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one event produced: a result, maybe a dead letter. Its facts wait in the stage's batch,
    an accepted event's time in the stage's `accepted_ts`."""

    result: str
    reason: str | None = None
    dead_letter: bytes | None = None


#: the outcomes without details, shared: an object per event cost ~4 % of a busy worker (py-spy)
ACCEPTED_OUTCOME, DUPLICATE_OUTCOME = Outcome(ACCEPTED), Outcome(DUPLICATE)


#: one batch entry: [source partition, source offset, index of the region within the event, facts]
Entry = list[Any]


def encode_facts(watermark: int | None, entries: list[Entry]) -> bytes:
    """A `cc.facts` message: the watermark and entries of facts with their source positions."""
    return orjson.dumps({"w": watermark, "e": entries})


def encode_tick(watermark: int) -> bytes:
    """A watermark-only message, sent to every facts partition so idle regions see time pass."""
    return orjson.dumps({"w": watermark})


def _rejected(raw: bytes, rejection: Rejected, clock: int) -> Outcome:
    return Outcome(REJECTED, rejection.reason, dead_letter=orjson.dumps(dead_letter(raw, rejection, clock)))


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a key (murmur2, as the Java client)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class TrackingStage:
    def __init__(self, settings: Settings, partitions: int, clock: Callable[[], int] = now_ms) -> None:
        pipeline = settings.pipeline
        self.partitions = partitions
        self.horizon_ms = pipeline.retention_horizon_s * 1000
        self.ticket_retention_ms = pipeline.ticket_retention_days * DAY_MS
        self.future_ms = pipeline.future_tolerance_s * 1000
        self.regions = frozenset(catalogue(pipeline.regions))
        self.watermark = Watermark(self.horizon_ms)
        self.clock = clock
        self.processing_clock = ProcessingClock(clock)
        self.arrival_clock = stopped_clock()
        #: events partition -> its tracker, holding that partition's contacts and tickets
        self.trackers: defaultdict[int, Tracker] = defaultdict(self._new_tracker)
        #: facts partition -> entries not yet taken, in the order their events were handled
        self.batch: dict[int, list[Entry]] = {}
        #: region -> its facts partition's list in `batch`, so an event's entry is filed in one lookup
        self._filed: dict[str, list[Entry]] = {}
        self._facts_partition: dict[str, int] = {}
        #: event times of the events accepted since the last `take_accepted`
        self.accepted_ts: list[int] = []

    def _new_tracker(self) -> Tracker:
        return Tracker({}, {}, self.horizon_ms, self.ticket_retention_ms)

    def revoke(self, partitions: Iterable[int]) -> None:
        """Forget the state of partitions this worker no longer owns (their next owner rebuilds it)."""
        for partition in partitions:
            self.trackers.pop(partition, None)

    def handle(self, raw: bytes, partition: int, offset: int) -> Outcome:
        """One event: its outcome, and its facts added to the batch."""
        try:
            event = decode(raw, self.regions, self.processing_clock, self.future_ms)
            if event.ts < self.watermark.floor:  # the cheaper test first: it is per event
                self.watermark.check(event)
        except Rejected as rejection:
            return _rejected(raw, rejection, self.clock())
        try:
            facts = self.trackers[partition].process(event)
        except Rejected as rejection:  # a conflict
            return _rejected(raw, rejection, self.clock())
        if facts is None:
            return DUPLICATE_OUTCOME
        ts = event.ts
        if self.watermark.advance(ts):
            self._release()
        if facts:
            self._batch(partition, offset, facts)
        self.accepted_ts.append(ts)
        return ACCEPTED_OUTCOME

    def rebuild(self, raw: bytes, partition: int, arrived_ms: int) -> None:
        """An event handled before (below the committed offset) read again for its state only: what
        it produced was sent then. It is judged again as it was, from the same events in the same
        order, except for the two rules that depend on when it was handled. `future_timestamp`
        takes the time the event reached the broker (`arrived_ms`) for the processing clock, which
        was that or later: an event rejected then is rejected again, and one accepted then is
        rejected now only if it was stamped over 5 minutes after it arrived and handled later
        still. `too_late` takes a watermark built from this worker's partitions so far; events
        within moments of the horizon may fall on the other side of it."""
        self.arrival_clock.ms = arrived_ms
        try:
            event = decode(raw, self.regions, self.arrival_clock, self.future_ms)
            if event.ts < self.watermark.floor:
                self.watermark.check(event)
            accepted = self.trackers[partition].process(event) is not None
        except Rejected:
            return
        if accepted and self.watermark.advance(event.ts):
            self._release()

    def _release(self) -> None:
        watermark = self.watermark.value
        for tracker in self.trackers.values():
            tracker.release(watermark)

    def _batch(self, partition: int, offset: int, facts: list[Fact]) -> None:
        """File the event's facts by region, in region order, each group as one entry."""
        region = facts[0][1]
        for fact in facts:
            if fact[1] != region:
                break
        else:  # nearly always: every fact of the event is of one region
            (self._filed.get(region) or self._entries(region)).append([partition, offset, 0, facts])
            return
        by_region: dict[str, list[Fact]] = {}
        for fact in facts:
            by_region.setdefault(fact[1], []).append(fact)
        for index, (region, group) in enumerate(sorted(by_region.items())):
            self._entries(region).append([partition, offset, index, group])

    def _entries(self, region: str) -> list[Entry]:
        number = self.facts_partition(region)
        entries = self.batch.get(number)
        if entries is None:
            entries = self.batch[number] = []
        self._filed[region] = entries
        return entries

    def facts_partition(self, region: str) -> int:
        """Where the producer's partitioner would put the region's key; stage two is keyed by region."""
        number = self._facts_partition.get(region)
        if number is None:
            number = self._facts_partition[region] = partition_of(region, self.partitions)
        return number

    def take_facts(self) -> list[tuple[int, bytes]]:
        """One message per facts partition with everything batched since the last call, and the
        watermark as it is now: stage two applies a message's entries before it moves its clock."""
        messages = [(number, encode_facts(self.watermark.value, entries))
                    for number, entries in sorted(self.batch.items())]
        self.batch = {}
        self._filed = {}
        return messages

    def take_accepted(self) -> list[int]:
        """The event times of the events accepted since the last call."""
        accepted, self.accepted_ts = self.accepted_ts, []
        return accepted

    def open_ticket_messages(self) -> list[tuple[bytes, bytes]]:
        """Restatements of tickets open for more than a day, keyed by region. The facts topic keeps
        only a few days, so without them a rebuilt stage two would forget long-open tickets,
        which are exactly the ones the 72 h promise is about."""
        watermark = self.watermark.value
        if watermark is None:
            return []
        by_region: dict[str, list[tuple[str, str, str, int]]] = {}
        for tracker in self.trackers.values():
            for entry in tracker.open_tickets(watermark - DAY_MS):
                by_region.setdefault(entry[0], []).append(entry)
        return [(region.encode(), orjson.dumps({"w": watermark, "o": entries}))
                for region, entries in sorted(by_region.items())]
