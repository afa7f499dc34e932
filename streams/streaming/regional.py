"""Stage two, keyed by region: count facts into buckets, publish records and breach transitions.

The facts topic is this stage's changelog: its state is a pure function of the partition's
messages, so after an assignment (or a restart) the partition is read again from its beginning and
the state rebuilt exactly; nothing is published for it until it has caught up. Facts carry their
source position, so facts sent twice by stage one after a crash are counted once.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from streams.config import Settings
from streams.core.aggregator import Aggregator
from streams.core.alerts import BreachTracker
from streams.core.records import build_records
from streams.core.timefmt import DAY_MS, MINUTE_MS
from streams.streaming.rollup import encode_rollup_tick, rollup_messages

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Publication:
    """What one publish tick sends: records, breach transitions, country-rollup upserts."""

    records: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    alerts: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    rollup: list[tuple[bytes, bytes]] = dataclasses.field(default_factory=list)


class RegionalPartition:
    """The state rebuilt from one facts partition."""

    def __init__(self, aggregator: Aggregator) -> None:
        self.aggregator = aggregator
        #: source partition -> (offset, index) of the newest fact message applied from it
        self.applied: dict[int, tuple[int, int]] = {}
        self.next_offset = 0
        self.regions: set[str] = set()
        self.published: dict[str, dict[str, Any]] = {}
        #: the partition has once reached its end since it was assigned: its state is complete
        self.rebuilt = False
        #: the watermark its records were last built at (None: not yet built)
        self.built_as_of: int | None = None


class RegionalStage:
    def __init__(self, settings: Settings, observer: Callable[[list[list[Any]]], Any] | None = None,
                 region_event: Callable[[str, int], Any] | None = None) -> None:
        self.settings = settings
        self.observer = observer
        self.region_event = region_event
        pipeline = settings.pipeline
        self.horizon_ms = pipeline.retention_horizon_s * 1000
        self.ticket_retention_ms = pipeline.ticket_retention_days * DAY_MS
        self.partitions: dict[int, RegionalPartition] = {}
        self.as_of: int | None = None
        self.breaches = BreachTracker(settings.channels, pipeline.min_volume)
        self.rollup_as_of: int | None = None

    def partition(self, number: int) -> RegionalPartition:
        state = self.partitions.get(number)
        if state is None:
            aggregator = Aggregator(self.settings.channels, self.settings.pipeline.short_abandon_s,
                                    self.horizon_ms, self.ticket_retention_ms)
            aggregator.changes = set()
            state = self.partitions[number] = RegionalPartition(aggregator)
        return state

    def handle(self, raw: bytes, partition: int, offset: int) -> None:
        state = self.partition(partition)
        if offset < state.next_offset:
            return  # read again after a seek: already applied
        if offset > state.next_offset > 0:  # facts offsets have no holes: these never reached the stage
            log.warning("facts partition %d: offsets %d to %d were never delivered; the records of its regions "
                        "miss their facts until the partition is rebuilt", partition, state.next_offset,
                        offset - 1)
        state.next_offset = offset + 1
        message = orjson.loads(raw)
        watermark = message.get("w")
        entries = message.get("e")
        if entries:
            self._apply(state, entries)
        for region, channel, ticket_id, created in message.get("o", ()):
            state.aggregator.keep_open(region, channel, ticket_id, created)
            state.regions.add(region)
        if watermark is not None:
            self._advance(watermark)

    def _apply(self, state: RegionalPartition, entries: list[list[Any]]) -> None:
        """Count the facts of the entries not applied before, in one aggregator call (facts stay the
        JSON arrays they came as: the aggregator and the observer only index them), then in one
        observer call; each region's newest fact time is passed on once per message."""
        applied = state.applied
        fresh: list[list[Any]] = []
        newest: dict[str, int] = {}
        for source_partition, source_offset, index, facts in entries:
            position = (source_offset, index)
            if position <= applied.get(source_partition, (-1, -1)):
                continue  # stage one sent these facts again after a restart
            applied[source_partition] = position
            fresh += facts
            for fact in facts:
                if fact[3] > newest.get(fact[1], -1):
                    newest[fact[1]] = fact[3]
        state.aggregator.apply(fresh)
        if self.observer is not None:
            self.observer(fresh)
        state.regions.update(newest)
        if self.region_event is not None:
            for region, ts in newest.items():
                self.region_event(region, ts)

    def _advance(self, watermark: int) -> None:
        previous = self.as_of
        if previous is None or watermark > previous:
            self.as_of = watermark
            if previous is None or watermark // MINUTE_MS != previous // MINUTE_MS:
                for state in self.partitions.values():
                    state.aggregator.release(watermark)

    def revoke(self, partitions: Iterable[int]) -> set[str]:
        """Drop the state of lost partitions; returns their regions so their series can go too."""
        regions: set[str] = set()
        for number in partitions:
            state = self.partitions.pop(number, None)
            if state is not None:
                regions |= state.regions
        self.breaches.forget(regions)
        return regions

    def collect(self, caught_up: Mapping[int, bool]) -> Publication:
        """Records that changed since they were last published, breach transitions and country-rollup
        upserts, for the partitions rebuilt: caught up with their topic once since their assignment.

        Once, not at every round: under a steady load a partition is rarely at its very end at the
        moment of a round, and a gate checked every round held records back for seconds.

        A partition's records are a function of its buckets and the watermark: one with neither
        changed since its last build is skipped (an idle worker built all its records every round,
        70-90 ms, to find none changed), and its records, already evaluated, need no second look
        for breaches."""
        if self.as_of is None:
            return Publication()
        changed: list[dict[str, Any]] = []
        current: list[dict[str, Any]] = []
        rollup: list[tuple[bytes, bytes]] = []
        for number, state in self.partitions.items():
            if not state.rebuilt:
                if not caught_up.get(number, False):
                    continue
                state.rebuilt = True
            if state.built_as_of == self.as_of and not state.aggregator.changes:
                continue
            state.built_as_of = self.as_of
            rollup.extend(rollup_messages(state.aggregator, self.as_of))
            records = build_records(state.aggregator, self.as_of, self.settings.channels, country=False)
            current.extend(records)
            for record in records:
                key = record_key(record)
                if state.published.get(key) != record:
                    state.published[key] = record
                    changed.append(record)
        if self.as_of != self.rollup_as_of:
            self.rollup_as_of = self.as_of
            rollup.append(encode_rollup_tick(self.as_of))
        return Publication(changed, self.breaches.evaluate(current), rollup)


def record_key(record: Mapping[str, Any]) -> str:
    """The metric topic's key: `region|channel|window`."""
    return f"{record['region']}|{record['channel']}|{record['window']}"
