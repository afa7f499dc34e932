"""Stage one, keyed by contact: validate, deduplicate, track, and turn events into facts.

The events topic is this stage's changelog, as the facts topic is stage two's: its state (one
`Tracker` per events partition) is a pure function of the partition's events, so an assigned
partition is first read again from its beginning up to the committed offset (`rebuild`: state
only, nothing sent), then handled from there. No table write per event: that write, not the
arithmetic, was what a worker spent its time on (benchmarks/HISTORY.md).

Facts are gathered across events and taken (`take_facts`) as one message per facts partition:
a message per event cost the worker more than all the arithmetic. Each entry keeps its source
position (events partition, offset, index), so after a crash the events handled again past the
last commit produce the very same entries, and stage two drops those it already has.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import orjson

from streams.config import Settings
from streams.core.deadletter import dead_letter
from streams.core.engine import DUPLICATE, REJECTED, Watermark
from streams.core.events import Rejected, decode
from streams.core.facts import Fact
from streams.core.timefmt import DAY_MS, ProcessingClock, now_ms, stopped_clock
from streams.core.tracker import Tracker
from streams.regions import catalogue
from streams.streaming.partitioner import partition_of


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What an event that was not accepted came to: duplicate, or rejected with a reason and its
    dead letter. An accepted event leaves its facts in the stage's batch and its time in the
    stage's `accepted_ts`."""

    result: str
    reason: str | None = None
    dead_letter: bytes | None = None


#: shared by every duplicate
DUPLICATE_OUTCOME = Outcome(DUPLICATE)


#: one batch entry: [source partition, source offset, index of the region within the event, facts]
Entry = list[Any]


class EventMessage(Protocol):
    """What stage one reads of an events message (aiokafka's `ConsumerRecord` has it)."""

    key: bytes | None
    value: bytes
    offset: int
    timestamp: int  # when it reached the broker, epoch ms


def encode_facts(watermark: int | None, entries: list[Entry]) -> bytes:
    """A `cc.facts` message: the watermark and entries of facts with their source positions."""
    return orjson.dumps({"w": watermark, "e": entries})


def encode_tick(watermark: int) -> bytes:
    """A watermark-only message, sent to every facts partition so idle regions see time pass."""
    return orjson.dumps({"w": watermark})


def _rejected(raw: bytes, rejection: Rejected, clock: int) -> Outcome:
    return Outcome(REJECTED, rejection.reason, dead_letter=orjson.dumps(dead_letter(raw, rejection, clock)))


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

    def handle(self, partition: int, messages: Iterable[EventMessage]) -> list[tuple[EventMessage, Outcome]]:
        """A fetch of one events partition, in order: facts added to the batch, accepted event times
        kept; the messages not accepted (duplicates, rejections) returned with their outcomes. A
        fetch per call, not an event: a call and the stage's attributes looked up per event cost
        more than some of the checks."""
        regions, clock, future_ms = self.regions, self.processing_clock, self.future_ms
        watermark, track, accepted_ts = self.watermark, self.trackers[partition].process, self.accepted_ts
        refused: list[tuple[EventMessage, Outcome]] = []
        for message in messages:
            raw = message.value
            try:
                event = decode(raw, regions, clock, future_ms)
                if event.ts < watermark.floor:  # the cheaper test first: it is per event
                    watermark.check(event)
                facts = track(event)
            except Rejected as rejection:  # invalid, too late, or a conflict
                refused.append((message, _rejected(raw, rejection, self.clock())))
                continue
            if facts is None:
                refused.append((message, DUPLICATE_OUTCOME))
                continue
            ts = event.ts
            if watermark.advance(ts):
                self._release()
            if facts:
                self._batch(partition, message.offset, facts)
            accepted_ts.append(ts)
        return refused

    def rebuild(self, partition: int, messages: Iterable[EventMessage]) -> None:
        """Events handled before (below the committed offset) read again for their state only: what
        they produced was sent then. Each is judged again as it was, from the same events in the
        same order, except for the two rules that depend on when it was handled.
        `future_timestamp` takes the time the event reached the broker (its message's timestamp)
        for the processing clock, which was that or later: an event rejected then is rejected
        again, and one accepted then is rejected now only if it was stamped over 5 minutes after
        it arrived and handled later still. `too_late` takes a watermark built from this worker's
        partitions so far; events within moments of the horizon may fall on the other side of it."""
        regions, clock, future_ms = self.regions, self.arrival_clock, self.future_ms
        watermark, track = self.watermark, self.trackers[partition].process
        for message in messages:
            clock.ms = message.timestamp
            try:
                event = decode(message.value, regions, clock, future_ms)
                if event.ts < watermark.floor:
                    watermark.check(event)
                accepted = track(event) is not None
            except Rejected:
                continue
            if accepted and watermark.advance(event.ts):
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
            number = self._facts_partition[region] = partition_of(region.encode(), self.partitions)
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
