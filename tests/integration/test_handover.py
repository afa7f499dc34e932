"""A handover on a real broker: what the old owner published before its revoke returned is readable
when the new owner takes its partitions over.

Stage two's breach state survives a move because the new owner reads the alerts topic back on
assignment (`Aggregation._open_breaches`); that holds only if nothing the old owner judged before
the move reaches the topic after that read. `Handover` gives it with Kafka's eager rebalance: the
revoke waits for the round in progress and flushes, and no partition is assigned before every
member's revoke has returned. Here two real consumers of one group play the two owners, and the
old owner's rounds are long (one message, a pause, another), so that a revoke almost always
comes in the middle of one.

A worker whose event loop stands still longer than its group's session is expelled, and its
partitions go to another member without a revoke there; the second test has the old owner's loop
stand still until the new owner has read back, and checks that nothing the old owner sends after
it reaches the topic before the group has given it partitions again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka import KafkaAdminClient

from streams.streaming.publishing import Handover
from streams.streaming.reading import read_again, topic_ends
from streams.streaming.rebalance import StageRebalance

#: the pause inside one of the old owner's rounds, between its two messages
ROUND_PAUSE_S = 1.0


class OldOwner:
    """Publishes rounds of two numbered messages through a `Handover`, as the worker's publisher does."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, heartbeat_interval_s: float = 3.0,
                 round_pause_s: float = ROUND_PAUSE_S) -> None:
        self.producer = producer
        self.topic = topic
        self.handover = Handover(producer.flush, heartbeat_interval_s)
        self.round_pause_s = round_pause_s
        self.sent = 0
        self.rounds_begun = 0
        #: messages of the rounds begun before the revoke, once one came
        self.due_before_move: int | None = None
        #: called once, after the first message of a round is written, to stand the event loop still
        self.standstill: Callable[[], None] | None = None
        #: messages sent when the standstill began (all written: the producer was flushed); None before it
        self.sent_at_standstill: int | None = None
        #: messages sent when partitions came back after the standstill
        self.sent_when_assigned_again: int | None = None

    async def publish_round(self) -> None:
        self.rounds_begun += 1
        await self.send()
        if self.standstill is not None:
            await self.producer.flush()
            standstill, self.standstill = self.standstill, None
            self.sent_at_standstill = self.sent
            standstill()
        await asyncio.sleep(self.round_pause_s)
        await self.send()

    async def send(self) -> None:
        await self.handover.cleared()
        self.sent += 1
        await self.producer.send(self.topic, str(self.sent).encode())  # queued, not awaited: as the worker sends

    async def publish(self) -> None:
        while True:
            await self.handover.run_round(self.publish_round)
            await asyncio.sleep(0.01)

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        if revoked:
            if self.due_before_move is None:
                self.due_before_move = 2 * self.rounds_begun
            await self.handover.begin()

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        if self.sent_at_standstill is not None and self.sent_when_assigned_again is None:
            self.sent_when_assigned_again = self.sent
        self.handover.end()


class NewOwner:
    """Reads the published topic back when partitions come to it, as stage two reads the alerts."""

    def __init__(self, options: dict[str, Any], topic: str) -> None:
        self.options = options
        self.topic = topic
        self.read: list[int] | None = None
        self.read_back = threading.Event()

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        pass

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        if not assigned or self.read is not None:
            return
        found: list[int] = []
        await read_again(self.options, await topic_ends(self.options, self.topic),
                         lambda _partition, messages: found.extend(int(m.value) for m in messages), "published")
        self.read = found
        self.read_back.set()


def new_topics(kafka_bootstrap: str, prefix: str) -> tuple[str, str, str]:
    """Names for a test of its own: the owned topic (two partitions, created), the published one (one
    partition, created) and the group."""
    suffix = uuid.uuid4().hex[:8]
    owned, published = f"{prefix}.owned.{suffix}", f"{prefix}.published.{suffix}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics({owned: {"num_partitions": 2, "replication_factor": 1},
                         published: {"num_partitions": 1, "replication_factor": 1}}, wait_for_metadata=True)
    admin.close()
    return owned, published, f"{prefix}-{suffix}"


async def wait_for(condition: Any, timeout_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


async def consume(consumer: AIOKafkaConsumer) -> None:
    while True:
        await consumer.getmany(timeout_ms=100)


class OwnerThread(threading.Thread):
    """A member of the group on an event loop of its own, so that it goes on while the test's stands still."""

    def __init__(self, options: dict[str, Any], group: str, topic: str, owner: NewOwner) -> None:
        super().__init__(daemon=True)
        self.options, self.group, self.topic, self.owner = options, group, topic, owner
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._consume())
        except BaseException as exc:  # reported by the test, which runs in another thread
            self.error = exc

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(group_id=self.group, enable_auto_commit=False, session_timeout_ms=SESSION_MS,
                                    heartbeat_interval_ms=HEARTBEAT_MS, **self.options)
        await consumer.start()
        try:
            consumer.subscribe([self.topic], listener=StageRebalance(self.owner, "the new owner"))
            while not self.stopping.is_set():
                await consumer.getmany(timeout_ms=100)
        finally:
            await consumer.stop()


#: the group's session and heartbeat in the expelled-owner test (the broker's least session is 6 s)
SESSION_MS, HEARTBEAT_MS = 6000, 1000


async def test_an_owner_expelled_while_it_stood_still_sends_nothing_until_it_has_partitions_again(
        kafka_bootstrap: str, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="streams.streaming.publishing")
    owned, published, group = new_topics(kafka_bootstrap, "expelled")
    options = {"bootstrap_servers": kafka_bootstrap}
    producer = AIOKafkaProducer(acks="all", **options)
    await producer.start()
    old = OldOwner(producer, published, heartbeat_interval_s=HEARTBEAT_MS / 1000, round_pause_s=0.1)
    new = NewOwner(options, published)
    other = OwnerThread(options, group, owned, new)
    consumer = AIOKafkaConsumer(group_id=group, enable_auto_commit=False, session_timeout_ms=SESSION_MS,
                                heartbeat_interval_ms=HEARTBEAT_MS, **options)
    tasks: list[asyncio.Task[None]] = []
    stood_still_s: list[float] = []

    def stand_still() -> None:
        """The old owner's process paused until its group has given its partitions to the new owner
        (a session, 6 s, and the join), who has read the topic back; 60 s at most."""
        began = time.monotonic()
        other.start()
        new.read_back.wait(timeout=60)
        stood_still_s.append(time.monotonic() - began)

    try:
        await consumer.start()
        consumer.subscribe([owned], listener=StageRebalance(old, "the old owner"))
        tasks.append(asyncio.create_task(consume(consumer)))
        tasks.append(asyncio.create_task(old.handover.keep_time()))
        await wait_for(lambda: len(consumer.assignment()) == 2, 60, "the old owner assigned both partitions")
        tasks.append(asyncio.create_task(old.publish()))
        await wait_for(lambda: old.sent >= 3, 30, "the old owner publishing")
        old.standstill = stand_still
        await wait_for(lambda: old.sent_at_standstill is not None, 90, "the old owner standing still and going on")
        assert new.read_back.is_set(), f"the new owner read back while the old one stood still ({other.error!r})"
        sent_before = old.sent_at_standstill
        assert sent_before is not None
        await wait_for(lambda: old.sent_when_assigned_again is not None, 60,
                       "the old owner assigned partitions again after its standstill")
        await wait_for(lambda: old.sent >= sent_before + 3, 30, "the old owner publishing again")

        assert other.error is None, f"the new owner's thread failed: {other.error!r}"
        assert new.read == list(range(1, sent_before + 1)), "the new owner read back all sent before the standstill"
        assert old.sent_when_assigned_again == sent_before, (
            f"the old owner sent {old.sent_when_assigned_again - sent_before} messages after its standstill of "
            f"{stood_still_s[0]:.1f} s before the group gave it partitions again: after the new owner's read-back")
        assert "the event loop stood still" in caplog.text
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        other.stopping.set()
        if other.is_alive():
            other.join(timeout=30)
        await consumer.stop()
        await producer.stop()


async def test_what_the_old_owner_published_before_the_move_is_read_by_the_new_owner(kafka_bootstrap: str) -> None:
    owned, published, group = new_topics(kafka_bootstrap, "handover")
    options = {"bootstrap_servers": kafka_bootstrap}
    producer = AIOKafkaProducer(acks="all", **options)
    await producer.start()
    old = OldOwner(producer, published)
    new = NewOwner(options, published)
    consumers = [AIOKafkaConsumer(group_id=group, enable_auto_commit=False, **options)
                 for _ in range(2)]
    tasks: list[asyncio.Task[None]] = []
    try:
        await consumers[0].start()
        consumers[0].subscribe([owned], listener=StageRebalance(old, "the old owner"))
        tasks.append(asyncio.create_task(consume(consumers[0])))
        await wait_for(lambda: len(consumers[0].assignment()) == 2, 60, "the old owner assigned both partitions")
        tasks.append(asyncio.create_task(old.publish()))
        await wait_for(lambda: old.sent >= 3, 30, "the old owner publishing")

        await consumers[1].start()
        consumers[1].subscribe([owned], listener=StageRebalance(new, "the new owner"))
        tasks.append(asyncio.create_task(consume(consumers[1])))
        await wait_for(lambda: new.read is not None, 60, "the new owner assigned a partition and reading back")
        await wait_for(lambda: len(consumers[0].assignment()) == 1, 30, "the old owner keeping one partition")

        assert old.due_before_move is not None, "the old owner's partitions were revoked"
        assert new.read is not None
        assert new.read[:old.due_before_move] == list(range(1, old.due_before_move + 1)), (
            f"the new owner read {new.read}, not every message of the {old.due_before_move // 2} rounds the "
            "old owner began before the move")
        await wait_for(lambda: old.sent > max(new.read, default=0) + 2, 30, "the old owner publishing after the move")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for consumer in consumers:
            await consumer.stop()
        await producer.stop()
