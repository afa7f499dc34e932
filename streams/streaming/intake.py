"""Stage one's consumer: the events topic read in batches, handled, and turned into facts.

Not a Faust agent: Faust delivers a message at a time through its conductor and stream (about
130 µs per event on the reference VM before any work is done), and a table write per event
doubled that; read in batches with aiokafka and kept in plain dicts, stage one costs a few
microseconds per event (benchmarks/HISTORY.md). Its consumer group is the worker's app id with
`-intake` appended; Kafka splits the events partitions among the workers as it splits the facts
partitions among their stage-two consumers.

Delivery: an offset is committed only after the facts and dead letters of every event below it
are on the broker. On assignment, a partition new to this worker is read again from its
beginning up to its committed offset for its state only (`TrackingStage.rebuild`); what comes
after is handled again, and its facts, identical to the ones sent before the crash, are dropped
by stage two by their source position.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from streams.config import Settings
from streams.core.engine import ACCEPTED
from streams.core.timefmt import now_ms
from streams.exposition import Exposition
from streams.kafka_client import aiokafka_options
from streams.streaming.reading import read_again
from streams.streaming.rebalance import StageRebalance
from streams.streaming.tracking import TrackingStage, encode_tick

log = logging.getLogger(__name__)

#: the most events handled between two sends of the facts batch
BATCH_EVENTS = 2000
#: how long the broker holds a fetch until FETCH_MIN_BYTES of events have arrived: the most a lone
#: event waits for its facts. Under a steady load, a fetch that returned as soon as one event was
#: there made batches of a few events, each sending a facts message to every facts partition, and
#: stage two (then a Faust agent, ~130 µs a message) took the event loop (5,000 events/s saturated
#: a worker that reads 24,000/s in a backlog). Held up to 50 ms, a batch carries a steady load's
#: 50 ms of events; in a backlog a fetch is full at once.
FETCH_WAIT_MS = 50
FETCH_MIN_BYTES = 1 << 20
#: the producers (the intake's, and Faust's for records, alerts and rollup upserts) wait this long to fill a request
PRODUCER_LINGER_MS = 30
#: committing offsets, and carrying the watermark to every facts partition, at most this often
COMMIT_INTERVAL_S = 1.0
TICK_INTERVAL_S = 1.0


@dataclasses.dataclass
class Topics:
    """The topics stage one reads and writes, by their full names."""

    events: str
    facts: str
    dead_letters: str


@dataclasses.dataclass
class OffsetSensors:
    """Where the events topic's end and committed offsets are reported (Faust's monitor, so they
    are the same series as the other topics' and the consumer-lag alert and panels cover them)."""

    end_offset: Callable[[TopicPartition, int], None]
    committed: Callable[[dict[TopicPartition, int]], None]


class Intake:
    def __init__(self, settings: Settings, tracking: TrackingStage, exposition: Exposition, topics: Topics,
                 sensors: OffsetSensors, group_id: str) -> None:
        self.settings = settings
        self.tracking = tracking
        self.exposition = exposition
        self.topics = topics
        self.sensors = sensors
        self.group_id = group_id
        self.options = aiokafka_options(settings.kafka)
        #: events partition -> the next offset a commit may cover: every event below it has been
        #: handled and its facts and dead letter handed to the producer
        self.positions: dict[int, int] = {}
        #: deliveries of the facts and dead letters sent since the last commit
        self._deliveries: list[asyncio.Future[Any]] = []
        #: events partitions whose state this worker holds
        self.owned: set[int] = set()
        #: held while a batch is handled and sent, so a rebalance sees whole batches only
        self.lock = asyncio.Lock()
        #: (key, dead letter) of the batch being handled
        self._dead_letters: list[tuple[bytes | None, bytes]] = []
        self._last_tick: int | None = None
        self._next_commit = self._next_tick = 0.0
        self._next_restatement = time.monotonic() + settings.pipeline.ticket_refresh_s
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        #: the last fetch was full: events are waiting (the publisher then paces itself)
        self.backlogged = False
        self.rebalance = StageRebalance(self, "stage one could not rebuild the state of its new partitions")

    async def run(self) -> None:
        """Consume until cancelled (the worker stopping); an exception is a bug and ends the worker."""
        self.producer = AIOKafkaProducer(linger_ms=PRODUCER_LINGER_MS, acks="all", **self.options)
        self.consumer = AIOKafkaConsumer(group_id=self.group_id, enable_auto_commit=False,
                                         auto_offset_reset="earliest", fetch_max_wait_ms=FETCH_WAIT_MS,
                                         fetch_min_bytes=FETCH_MIN_BYTES, **self.options)
        await self.producer.start()
        try:
            await self.consumer.start()
            self.consumer.subscribe([self.topics.events], listener=self.rebalance)
            while True:
                batches = await self.consumer.getmany(timeout_ms=FETCH_WAIT_MS, max_records=BATCH_EVENTS)
                self.rebalance.raise_if_failed()
                self.backlogged = sum(map(len, batches.values())) >= BATCH_EVENTS
                async with self.lock:
                    handled = self._handle(batches)
                    await self._send_facts()
                    # only now may a commit cover these events: cancelled while the batch was being
                    # sent (the worker stopping), the events are handled again at the next start
                    self.positions.update(handled)
                    await self._tick()
                await self._maybe_commit()
        finally:
            await self._stop()

    def _handle(self, batches: dict[TopicPartition, list[Any]]) -> dict[int, int]:
        """Handle a fetched batch; the next offset of each partition in it. Its counts and event lags
        go to the exposition once for the batch (the lags against one clock reading, taken as the
        batch starts)."""
        handle = self.tracking.handle
        handled: dict[int, int] = {}
        dead_letters = self._dead_letters
        results: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        now = now_ms()
        for tp, messages in batches.items():
            for message, outcome in handle(tp.partition, messages):  # the accepted ones are counted below
                results[outcome.result] += 1
                if outcome.dead_letter is not None:
                    reasons[outcome.reason] += 1
                    dead_letters.append((message.key, outcome.dead_letter))
            if messages:
                handled[tp.partition] = messages[-1].offset + 1
        accepted_ts = self.tracking.take_accepted()
        if accepted_ts:
            results[ACCEPTED] = len(accepted_ts)
        if results:
            self.exposition.events_read(results, reasons, now, accepted_ts)
        if accepted_ts:
            self.exposition.set_watermark(self.tracking.watermark.value)
        return handled

    async def _send_facts(self) -> None:
        """The batch's dead letters and facts go to the producer (delivered by the next commit)."""
        assert self.producer is not None
        send, deliveries = self.producer.send, self._deliveries
        for key, value in self._dead_letters:
            deliveries.append(await send(self.topics.dead_letters, key=key, value=value))
        self._dead_letters = []
        for partition, value in self.tracking.take_facts():
            deliveries.append(await send(self.topics.facts, value=value, partition=partition))

    async def _tick(self) -> None:
        """Carry the watermark to every facts partition, so every region sees time pass (after the
        facts counted before it, on the same producer); restate long-open tickets now and then."""
        assert self.producer is not None
        now = time.monotonic()
        watermark = self.tracking.watermark.value
        if now >= self._next_tick and watermark is not None and watermark != self._last_tick:
            self._next_tick, self._last_tick = now + TICK_INTERVAL_S, watermark
            value = encode_tick(watermark)
            for partition in range(self.tracking.partitions):
                await self.producer.send(self.topics.facts, value=value, partition=partition)
        if now >= self._next_restatement:
            self._next_restatement = now + self.settings.pipeline.ticket_refresh_s
            for key, value in self.tracking.open_ticket_messages():
                await self.producer.send(self.topics.facts, key=key, value=value)

    async def _maybe_commit(self) -> None:
        if time.monotonic() >= self._next_commit:
            self._next_commit = time.monotonic() + COMMIT_INTERVAL_S
            async with self.lock:
                await self._commit(self.owned)

    async def _commit(self, partitions: Iterable[int]) -> None:
        """Deliver everything sent, then commit the handled offsets of these partitions. A delivery
        that failed (the producer gave up retrying) raises: the worker stops without committing, and
        the events are handled again at its restart. A failed commit (a rebalance under way) is
        logged and left to the next one: the events past the last commit are handled again, which
        changes nothing downstream."""
        assert self.producer is not None and self.consumer is not None
        offsets = {TopicPartition(self.topics.events, number): self.positions[number]
                   for number in partitions if number in self.positions}
        if not offsets:
            return
        await self.producer.flush()
        deliveries, self._deliveries = self._deliveries, []
        await asyncio.gather(*deliveries)
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            log.info("events offsets not committed this time (%s); the next commit covers them", exc)
            return
        self.sensors.committed(offsets)
        for tp in offsets:
            end = self.consumer.highwater(tp)
            if end is not None:
                self.sensors.end_offset(tp, end)

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Before a rebalance: everything handled so far is sent and committed. The state is kept
        until the new assignment says which partitions this worker lost."""
        async with self.lock:
            await self._send_facts()
            await self._commit(self.owned)

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Drop the state of partitions lost; rebuild the state of partitions new to this worker.

        Under the lock: the consumer may fetch the new partitions while they are rebuilt, and
        their events must wait until the state they follow is complete."""
        async with self.lock:
            numbers = {tp.partition for tp in assigned}
            lost = self.owned - numbers
            self.tracking.revoke(lost)
            for number in lost:
                self.positions.pop(number, None)
            new = sorted(numbers - self.owned)
            self.owned = numbers
            log.info("events partitions owned %s (rebuilding %s, lost %s)", sorted(numbers), new, sorted(lost))
            if new:
                await self._rebuild(new)

    async def _rebuild(self, partitions: list[int]) -> None:
        """Read each new partition from its beginning up to its committed offset, state only."""
        assert self.consumer is not None
        ends: dict[TopicPartition, int] = {}
        for number in partitions:
            tp = TopicPartition(self.topics.events, number)
            committed = await self.consumer.committed(tp)
            if committed:
                ends[tp] = self.positions[number] = committed
        if not ends:
            return
        started = time.monotonic()
        count = await read_again(self.options, ends, self.tracking.rebuild, "events")
        log.info("events partitions %s rebuilt: %d events read again in %.1f s", sorted(tp.partition for tp in ends),
                 count, time.monotonic() - started)

    async def _stop(self) -> None:
        """A clean stop sends and commits what was handled, so a restart re-reads as little as it can."""
        try:
            if self.consumer is not None and self.owned:
                async with self.lock:
                    await self._send_facts()
                    await self._commit(self.owned)
        except KafkaError as exc:
            log.warning("stopping: the last events offsets were not committed (%s); they are handled again "
                        "at the next start", exc)
        finally:
            if self.consumer is not None:
                await self.consumer.stop()
            if self.producer is not None:
                await self.producer.stop()
