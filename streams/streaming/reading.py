"""Reading partitions again from their beginning up to a known end: a stage's state from its topic.

Each read has a consumer of its own (no group, nothing committed), so the stage's consumer keeps
its positions and its group membership while it lasts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger(__name__)

#: a long read logs its progress this often
PROGRESS_S = 5.0
#: the most messages one fetch returns
FETCH_MESSAGES = 10_000


async def _read_until(reader: AIOKafkaConsumer, ends: dict[TopicPartition, int],
                     handle: Callable[[int, list[Any]], None], what: str) -> int:
    """Feed every message below each partition's end to `handle` (partition, messages), logging
    progress as "rebuilding <what> …" while it lasts; the number of messages read."""
    remaining = dict(ends)
    count = 0
    next_report = time.monotonic() + PROGRESS_S
    while remaining:
        for tp in list(remaining):
            if await reader.position(tp) >= remaining[tp]:
                del remaining[tp]
        if not remaining:
            break
        batches = await reader.getmany(*remaining, timeout_ms=1000, max_records=FETCH_MESSAGES)
        for tp, messages in batches.items():
            end = remaining.get(tp)
            if end is None or not messages:
                continue
            if messages[-1].offset >= end:  # the fetch went past the end asked for
                messages = [message for message in messages if message.offset < end]
            handle(tp.partition, messages)
            count += len(messages)
        if time.monotonic() >= next_report:
            next_report += PROGRESS_S
            log.info("rebuilding %s partitions %s: %d messages read again so far", what,
                     sorted(tp.partition for tp in remaining), count)
    return count


def reader(options: Mapping[str, Any], **settings: Any) -> AIOKafkaConsumer:
    """A consumer of no group that starts where it is told, else at the beginning (a fresh consumer
    asked for end offsets before a seek to the beginning let a reset to the latest offset overtake
    the seek, and read nothing)."""
    return AIOKafkaConsumer(enable_auto_commit=False, group_id=None, auto_offset_reset="earliest",
                            **settings, **options)


async def all_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of a topic, assigned to the (started) consumer."""
    first = TopicPartition(topic, 0)  # every topic has a partition 0: through it the consumer
    consumer.assign([first])  # learns the topic's metadata, and so all its partitions
    await consumer.end_offsets([first])
    tps = [TopicPartition(topic, number) for number in sorted(consumer.partitions_for_topic(topic) or (0,))]
    consumer.assign(tps)
    return tps


async def topic_ends(options: Mapping[str, Any], topic: str) -> dict[TopicPartition, int]:
    """The end offset of each of a topic's partitions that has ever held a message."""
    consumer = reader(options)
    await consumer.start()
    try:
        tps = await all_partitions(consumer, topic)
        return {tp: end for tp, end in (await consumer.end_offsets(tps)).items() if end > 0}
    finally:
        await consumer.stop()


async def read_again(options: Mapping[str, Any], ends: dict[TopicPartition, int],
                     handle: Callable[[int, list[Any]], None], what: str) -> int:
    """Feed every message from each partition's beginning to its end to `handle`; the number read."""
    if not ends:
        return 0
    consumer = reader(options)
    await consumer.start()
    try:
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        return await _read_until(consumer, ends, handle, what)
    finally:
        await consumer.stop()
