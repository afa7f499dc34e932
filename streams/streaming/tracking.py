"""Stage one, keyed by contact: validate, deduplicate, track, and turn events into facts.

The state lives in the two changelogged tables handed in (contacts, tickets). Each partition has
its own `Tracker` so that state released on a watermark advance is deleted while processing an
event of the same partition, and the tombstone lands in that partition's changelog.

Facts are gathered across events and taken (`take_facts`) as one message per facts partition:
a message per event cost the worker more than all the arithmetic (a producer send here, a
consumer delivery in stage two). Each entry keeps its source position, so stage two still drops
what it has already applied, entry by entry; the caller acks an event only once the message with
its facts is with the producer, so a commit never passes facts that were never sent.

Redelivery: after a crash, events since the last offset commit come again, but their state
write may have outlived the crash while their facts (or dead letter) did not — the local store
and the changelog are written apart from the facts topic. So each contact's state also keeps
what its uncommitted events produced, by source offset (`"sent"`); an event that comes again
from the same offset is answered from there, and stage two drops the copies it already has by
their source position. Entries go once the consumer has committed past them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any

import orjson
from kafka.partitioner.default import murmur2

from streams.config import Settings
from streams.core.deadletter import dead_letter
from streams.core.engine import ACCEPTED, DUPLICATE, REJECTED, Watermark
from streams.core.events import Event, Rejected, decode
from streams.core.facts import Fact
from streams.core.timefmt import DAY_MS, ProcessingClock, now_ms
from streams.core.tracker import Tracker
from streams.regions import catalogue


@dataclasses.dataclass
class Outcome:
    """What one event produced: a result, maybe a dead letter (its facts wait in the stage's batch)."""

    result: str
    reason: str | None = None
    dead_letter: bytes | None = None
    event_ts: int | None = None


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


#: the state key of what uncommitted events produced: {"<offset>": [event_id, facts, conflict detail]}
SENT = "sent"
_DELETED = object()


class DeferredStore(MutableMapping[str, Any]):
    """A table seen through the writes of the event being handled, so the stage can add that
    event's `sent` entry before the one write of its state reaches the table (and changelog)."""

    def __init__(self, table: MutableMapping[str, Any]) -> None:
        self.table = table
        self.pending: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = self.pending.get(key)
        if value is None:
            return self.table.get(key, default)
        return default if value is _DELETED else value

    def __setitem__(self, key: str, value: Any) -> None:
        self.pending[key] = value

    def __delitem__(self, key: str) -> None:
        self.pending[key] = _DELETED

    def __iter__(self) -> Iterator[str]:
        return iter(self.table)

    def __len__(self) -> int:
        return len(self.table)

    def items(self) -> Any:
        """Only used to reindex a tracker, which happens with nothing pending."""
        return self.table.items()

    def flush(self) -> None:
        for key, value in self.pending.items():
            if value is _DELETED:
                self.table.pop(key, None)
            else:
                self.table[key] = value
        self.pending.clear()


class TrackingStage:
    def __init__(self, settings: Settings, contacts: MutableMapping[str, Any], tickets: MutableMapping[str, Any],
                 partitions: int, clock: Callable[[], int] = now_ms) -> None:
        pipeline = settings.pipeline
        self.contacts = contacts
        self.tickets = tickets
        self.partitions = partitions
        self.horizon_ms = pipeline.retention_horizon_s * 1000
        self.ticket_retention_ms = pipeline.ticket_retention_days * DAY_MS
        self.future_ms = pipeline.future_tolerance_s * 1000
        self.regions = frozenset(catalogue(pipeline.regions))
        self.watermark = Watermark(self.horizon_ms)
        self.clock = clock
        self.processing_clock = ProcessingClock(clock)
        self.trackers: dict[int, Tracker] = {}
        self._contacts = DeferredStore(contacts)
        self._tickets = DeferredStore(tickets)
        #: events partition -> the offset below which everything is committed (see `SENT`)
        self.committed: dict[int, int] = {}
        #: facts partition -> entries not yet taken, in the order their events were handled
        self.batch: dict[int, list[Entry]] = {}
        self._facts_partition: dict[str, int] = {}

    def tracker(self, partition: int) -> Tracker:
        """The partition's tracker; its expiry index is rebuilt from the tables on first use."""
        tracker = self.trackers.get(partition)
        if tracker is None:
            tracker = Tracker(self._contacts, self._tickets, self.horizon_ms, self.ticket_retention_ms)
            tracker.reindex(self._owned(self.contacts, partition), self._owned(self.tickets, partition))
            self.trackers[partition] = tracker
        return tracker

    def revoke(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self.trackers.pop(partition, None)

    def handle(self, raw: bytes, partition: int, offset: int) -> Outcome:
        try:
            event = decode(raw, self.regions, self.processing_clock, self.future_ms)
            self.watermark.check(event)
        except Rejected as rejection:
            return _rejected(raw, rejection, self.clock())
        tracker = self.tracker(partition)
        try:
            return self._track(tracker, event, raw, partition, offset)
        finally:
            self._contacts.flush()
            self._tickets.flush()

    def _track(self, tracker: Tracker, event: Event, raw: bytes, partition: int, offset: int) -> Outcome:
        store = self._tickets if event.ticket else self._contacts
        try:
            facts = tracker.process(event)
        except Rejected as rejection:  # a conflict: its id is in the state now, so remember the letter
            self._remember(store[event.key], partition, offset, [event.event_id, None, rejection.detail])
            return _rejected(raw, rejection, self.clock())
        if facts is None:
            state = store.get(event.key)
            sent = state.get(SENT, {}).get(str(offset)) if state is not None else None
            if sent is None or sent[0] != event.event_id:
                return Outcome(DUPLICATE)
            if sent[1] is None:  # redelivered conflict
                return _rejected(raw, Rejected("conflict", None, sent[2]), self.clock())
            facts = [tuple(fact) for fact in sent[1]]
        else:  # also an event without facts: redelivered, it must move the watermark as it did
            self._remember(store[event.key], partition, offset, [event.event_id, facts, None])
        if self.watermark.advance(event.ts):
            tracker.release(self.watermark.value)
        self._batch(partition, offset, facts)
        return Outcome(ACCEPTED, event_ts=event.ts)

    def _batch(self, partition: int, offset: int, facts: list[Fact]) -> None:
        by_region: dict[str, list[Fact]] = {}
        for fact in facts:
            by_region.setdefault(fact[1], []).append(fact)
        for index, (region, group) in enumerate(sorted(by_region.items())):
            self.batch.setdefault(self.facts_partition(region), []).append([partition, offset, index, group])

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
        return messages

    def _remember(self, state: dict[str, Any], partition: int, offset: int, entry: list[Any]) -> None:
        """Keep what this offset produced until it is committed; drop what is committed already."""
        committed = self.committed.get(partition, 0)
        sent = {key: value for key, value in state.get(SENT, {}).items() if int(key) >= committed}
        sent[str(offset)] = entry
        state[SENT] = sent

    def commit(self, offsets: Mapping[int, int]) -> None:
        """Offsets (next to read) the consumer has committed, by events partition."""
        self.committed.update(offsets)

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

    def _owned(self, table: MutableMapping[str, Any], partition: int) -> list[tuple[str, Any]]:
        """The entries of one partition of a table (a restored table holds all assigned partitions)."""
        return [(key, value) for key, value in table.items() if partition_of(key, self.partitions) == partition]
