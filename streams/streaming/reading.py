"""Reading partitions again from their beginning up to a known end: a stage's state from its topic."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger(__name__)

#: a long read logs its progress this often
PROGRESS_S = 5.0
#: the most messages one fetch returns
FETCH_MESSAGES = 10_000


async def read_until(reader: AIOKafkaConsumer, ends: dict[TopicPartition, int],
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
