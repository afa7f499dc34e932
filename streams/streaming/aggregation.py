"""Stage two's consumer: the facts partitions (keyed by region) and the country-rollup partition, read in batches.

Not Faust agents, for the reason stage one is not (intake.py): Faust hands over a message at a
time through its conductor and stream (~130 µs each on the reference VM) for a few microseconds
of work, and at 5,000 events/s the facts and rollup messages (over a thousand a second) kept a
worker's event loop busy enough to hold records back for seconds. Its consumer group is the
worker's app id with `-aggregate` appended.

Nothing is committed: each topic is its stage's changelog. On assignment, a partition new to the
worker is read from its beginning and its state rebuilt; one it keeps is read on from where its
stage stopped. aiokafka keeps fetching every assigned partition through a rebalance, so none of
the rewinding Faust needed (messages it fetched during a rebalance were dropped and never fetched
again) is needed here; a partition that stops moving with messages waiting is still counted
(`stalled`) for the alert and the pipeline dashboard.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.config import Settings
from streams.core.records import ALL
from streams.kafka_client import aiokafka_options
from streams.streaming.alert_follower import AlertFollower, read_transition
from streams.streaming.publishing import Handover
from streams.streaming.reading import read_again, topic_ends
from streams.streaming.rebalance import StageRebalance
from streams.streaming.regional import RegionalStage
from streams.streaming.rollup import CountryRollup
from streams.streaming.watchdog import STALL_AFTER_S, StallWatch

log = logging.getLogger(__name__)

#: the most messages handled between two returns to the event loop
BATCH_MESSAGES = 500
#: how long a fetch waits when there is nothing to read
FETCH_WAIT_MS = 100
#: the group's heartbeat and session (aiokafka's defaults, stated since the publisher's `Handover` reasons
#: from them): a member is expelled after a session without a heartbeat
HEARTBEAT_INTERVAL_MS = 3000
SESSION_TIMEOUT_MS = 10_000


@dataclasses.dataclass
class Topics:
    """The topics stage two reads, by their full names."""

    facts: str
    rollup: str
    alerts: str


class Aggregation:
    def __init__(self, settings: Settings, regional: RegionalStage, topics: Topics, group_id: str,
                 forget_regions: Callable[[Iterable[str]], None], handover: Handover, source: bytes) -> None:
        """`source`: what this worker's alert transitions carry in their source header."""
        self.settings = settings
        self.regional = regional
        self.topics = topics
        self.group_id = group_id
        self.forget_regions = forget_regions
        self.handover = handover
        self.options = aiokafka_options(settings.kafka)
        #: the country rollup's state; a new one each time this worker comes to own its partition
        self.country = CountryRollup(settings)
        self.owns_rollup = False
        self.consumer: AIOKafkaConsumer | None = None
        self.watch: StallWatch[TopicPartition] = StallWatch(STALL_AFTER_S)
        self.rebalance = StageRebalance(self, "stage two could not take over its new partitions")
        self.follower = AlertFollower(self.options, topics.alerts, source, regional.breaches.adopt)

    async def run(self) -> None:
        """Consume until cancelled (the worker stopping); an exception is a bug and ends the worker."""
        self.consumer = AIOKafkaConsumer(group_id=self.group_id, enable_auto_commit=False,
                                         auto_offset_reset="earliest", fetch_max_wait_ms=FETCH_WAIT_MS,
                                         heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
                                         session_timeout_ms=SESSION_TIMEOUT_MS, **self.options)
        await self.consumer.start()
        try:
            self.consumer.subscribe([self.topics.facts, self.topics.rollup], listener=self.rebalance)
            while True:
                batches = await self.consumer.getmany(timeout_ms=FETCH_WAIT_MS, max_records=BATCH_MESSAGES)
                self.rebalance.raise_if_failed()
                self._handle(batches)
        finally:
            await self.consumer.stop()

    def _handle(self, batches: dict[TopicPartition, list]) -> None:
        facts = self.topics.facts
        for tp, messages in batches.items():
            if tp.topic == facts:
                handle, partition = self.regional.handle, tp.partition
                for message in messages:
                    handle(message.value, partition, message.offset)
            else:
                for message in messages:
                    self.country.handle(message.value, message.offset)

    def next_offsets(self) -> dict[TopicPartition, int]:
        """The next offset each assigned partition's stage will handle."""
        positions = {TopicPartition(self.topics.facts, number): state.next_offset
                     for number, state in self.regional.partitions.items()}
        if self.owns_rollup:
            positions[TopicPartition(self.topics.rollup, 0)] = self.country.next_offset
        return positions

    def facts_caught_up(self) -> dict[int, bool]:
        """For each facts partition not rebuilt yet: has its stage reached the end known to the consumer?"""
        return {number: self._caught_up(TopicPartition(self.topics.facts, number), state.next_offset)
                for number, state in self.regional.partitions.items() if not state.rebuilt}

    def country_rebuilt(self) -> bool:
        """The country rollup is owned here and has caught up with its partition once since (records
        are held back until then, as a facts partition's are)."""
        country = self.country
        if not self.owns_rollup or country.as_of is None:
            return False
        country.rebuilt = country.rebuilt or self._caught_up(TopicPartition(self.topics.rollup, 0),
                                                             country.next_offset)
        return country.rebuilt

    def _caught_up(self, tp: TopicPartition, next_offset: int) -> bool:
        """True once a stage has handled every message of its partition known to the consumer; not
        before the first fetch has told the consumer where the end is."""
        if self.consumer is None or tp not in self.consumer.assignment():
            return False
        end = self.consumer.highwater(tp)
        return end is not None and next_offset >= end

    def stalled(self) -> int:
        """How many assigned partitions have had messages waiting and none handled for STALL_AFTER_S
        (each is logged)."""
        if self.consumer is None:
            return 0
        positions = self.next_offsets()
        ends = {tp: end for tp in self.consumer.assignment()
                if (end := self.consumer.highwater(tp)) is not None}
        stalled = self.watch.observe(positions, ends)
        for tp in stalled:
            log.warning("partition %s/%d: %d messages waiting, none handled for %.0f s", tp.topic, tp.partition,
                        ends[tp] - positions.get(tp, 0), self.watch.stall_after_s)
        return len(stalled)

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Stop publishing until the new assignment is taken over (see `Handover`). Nothing to commit:
        the state is kept until the new assignment says what was lost."""
        if revoked:
            await self.handover.begin()
            log.info("publishing held until the new assignment is taken over (the last round's messages are written)")

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Drop the state of partitions lost (their series leave /metrics at once, before the new owner
        serves them); read new partitions from their beginning and kept ones on from their stage's position."""
        assert self.consumer is not None
        owned = {tp.partition for tp in assigned if tp.topic == self.topics.facts}
        lost = self.regional.revoke([number for number in list(self.regional.partitions) if number not in owned])
        kept = {tp: offset for tp, offset in self.next_offsets().items() if tp in assigned}
        owns_rollup = any(tp.topic == self.topics.rollup for tp in assigned)
        if self.owns_rollup and not owns_rollup:
            lost.add(ALL)
        if TopicPartition(self.topics.rollup, 0) not in kept:
            self.country = CountryRollup(self.settings)
        self.owns_rollup = owns_rollup
        self.forget_regions(lost)
        self.watch.reset()
        new = [tp for tp in assigned if tp not in kept]
        log.info("facts partitions owned %s (rebuilding %s), rollup owned %s, lost regions %s", sorted(owned),
                 sorted(tp.partition for tp in new if tp.topic == self.topics.facts), owns_rollup, sorted(lost))
        for tp, offset in kept.items():
            self.consumer.seek(tp, offset)
        if new:
            await self.consumer.seek_to_beginning(*new)
        if owned:
            published, ends = await self._open_breaches()
            self.regional.breaches.restore(published)
            self.follower.follow_from(ends)
        held_s = self.handover.end()
        if held_s is not None:
            log.info("publishing resumed after %.2f s held for the handover", held_s)

    async def _open_breaches(self) -> tuple[set[tuple[str, str, str]], dict[TopicPartition, int]]:
        """(region, channel, metric) whose last transition on the alerts topic is a breach, and the
        ends read up to. Read whole at each assignment of facts partitions: it holds transitions
        only, a few per region a day. Messages that are not alerts are skipped."""
        last: dict[tuple[str, str, str], str] = {}
        skipped = 0

        def take(partition: int, messages: list[Any]) -> None:
            nonlocal skipped
            for message in messages:
                transition = read_transition(message.value)
                if transition is None:
                    skipped += 1
                else:
                    last[transition[0]] = transition[1]

        ends = await topic_ends(self.options, self.topics.alerts)
        await read_again(self.options, ends, take, "alerts")
        if skipped:
            log.warning("alerts topic: %d messages that are not alerts skipped", skipped)
        return {key for key, state in last.items() if state == "breach"}, ends
