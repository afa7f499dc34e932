"""A handover on a real broker: what the old owner published before its revoke returned is readable
when the new owner takes its partitions over.

Stage two's breach state survives a move because the new owner reads the alerts topic back on
assignment (`Aggregation._open_breaches`); that holds only if nothing the old owner judged before
the move reaches the topic after that read. `Handover` gives it with Kafka's eager rebalance: the
revoke waits for the round in progress and flushes, and no partition is assigned before every
member's revoke has returned. Here two real consumers of one group play the two owners, and the
old owner's rounds are long (one message, a pause, another), so that a revoke almost always
comes in the middle of one.
"""

from __future__ import annotations

import asyncio
import uuid
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

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self.handover = Handover(producer.flush)
        self.sent = 0
        self.rounds_begun = 0
        #: messages of the rounds begun before the revoke, once one came
        self.due_before_move: int | None = None

    async def publish_round(self) -> None:
        self.rounds_begun += 1
        await self.send()
        await asyncio.sleep(ROUND_PAUSE_S)
        await self.send()

    async def send(self) -> None:
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
        self.handover.end()


class NewOwner:
    """Reads the published topic back when partitions come to it, as stage two reads the alerts."""

    def __init__(self, options: dict[str, Any], topic: str) -> None:
        self.options = options
        self.topic = topic
        self.read: list[int] | None = None

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        pass

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        if not assigned or self.read is not None:
            return
        found: list[int] = []
        await read_again(self.options, await topic_ends(self.options, self.topic),
                         lambda _partition, messages: found.extend(int(m.value) for m in messages), "published")
        self.read = found


async def wait_for(condition: Any, timeout_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


async def consume(consumer: AIOKafkaConsumer) -> None:
    while True:
        await consumer.getmany(timeout_ms=100)


async def test_what_the_old_owner_published_before_the_move_is_read_by_the_new_owner(kafka_bootstrap: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    owned, published = f"handover.owned.{suffix}", f"handover.published.{suffix}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics({owned: {"num_partitions": 2, "replication_factor": 1},
                         published: {"num_partitions": 1, "replication_factor": 1}}, wait_for_metadata=True)
    admin.close()
    options = {"bootstrap_servers": kafka_bootstrap}
    producer = AIOKafkaProducer(acks="all", **options)
    await producer.start()
    old = OldOwner(producer, published)
    new = NewOwner(options, published)
    consumers = [AIOKafkaConsumer(group_id=f"handover-{suffix}", enable_auto_commit=False, **options)
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
