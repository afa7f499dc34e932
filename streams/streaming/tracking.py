"""Stage one, keyed by contact: validate, deduplicate, track, and turn events into facts.

The state lives in the two changelogged tables handed in (contacts, tickets). Each partition has
its own `Tracker` so that state released on a watermark advance is deleted while processing an
event of the same partition, and the tombstone lands in that partition's changelog.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

import orjson
from kafka.partitioner.default import murmur2

from streams.config import Settings
from streams.core.deadletter import dead_letter
from streams.core.engine import ACCEPTED, DUPLICATE, REJECTED, Watermark
from streams.core.events import Rejected, decode
from streams.core.facts import Fact
from streams.core.timefmt import DAY_MS, now_ms
from streams.core.tracker import Tracker
from streams.regions import catalogue


@dataclasses.dataclass
class Outcome:
    """What one event produced: a result, fact messages keyed by region, maybe a dead letter."""

    result: str
    reason: str | None = None
    messages: list[tuple[bytes, bytes]] = dataclasses.field(default_factory=list)
    dead_letter: bytes | None = None
    event_ts: int | None = None


def encode_facts(source: tuple[int, int, int], watermark: int | None, facts: list[Fact]) -> bytes:
    """A `cc.facts` message: its source position (for idempotence), the watermark, the facts."""
    return orjson.dumps({"s": source, "w": watermark, "f": facts})


def encode_tick(watermark: int) -> bytes:
    """A watermark-only message, sent to every facts partition so idle regions see time pass."""
    return orjson.dumps({"w": watermark})


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a key (murmur2, as the Java client)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


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
        self.trackers: dict[int, Tracker] = {}

    def tracker(self, partition: int) -> Tracker:
        """The partition's tracker; its expiry index is rebuilt from the tables on first use."""
        tracker = self.trackers.get(partition)
        if tracker is None:
            tracker = Tracker(self.contacts, self.tickets, self.horizon_ms, self.ticket_retention_ms)
            tracker.reindex(self._owned(self.contacts, partition), self._owned(self.tickets, partition))
            self.trackers[partition] = tracker
        return tracker

    def revoke(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self.trackers.pop(partition, None)

    def handle(self, raw: bytes, partition: int, offset: int) -> Outcome:
        clock = self.clock()
        try:
            event = decode(raw, self.regions, clock, self.future_ms)
            self.watermark.check(event)
            tracker = self.tracker(partition)
            facts = tracker.process(event)
        except Rejected as rejection:
            letter = orjson.dumps(dead_letter(raw, rejection, clock))
            return Outcome(REJECTED, rejection.reason, dead_letter=letter)
        if facts is None:
            return Outcome(DUPLICATE)
        if self.watermark.advance(event.ts):
            tracker.release(self.watermark.value)
        by_region: dict[str, list[Fact]] = {}
        for fact in facts:
            by_region.setdefault(fact[1], []).append(fact)
        messages = [(region.encode(), encode_facts((partition, offset, index), self.watermark.value, group))
                    for index, (region, group) in enumerate(sorted(by_region.items()))]
        return Outcome(ACCEPTED, messages=messages, event_ts=event.ts)

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
