"""Following the alerts topic after its read-back, so a transition another worker delivers late is answered.

At an assignment a worker takes the open breaches from the alerts topic (`Aggregation.on_assigned`).
A worker expelled from its group while its event loop stood still may still deliver a transition
it had handed to its producer before the standstill, after the region's new owner read the topic
back; downstream then believes that transition. The follower reads every message from the ends
read back on, and the breach tracker adopts what other workers (or anyone) wrote: its next
evaluation of the region publishes a transition where the topic's last word is wrong. This
worker's own transitions are known by a header and skipped, as the tracker already holds them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiokafka import TopicPartition

from streams.streaming.reading import all_partitions, reader

log = logging.getLogger(__name__)

#: the header naming the worker process that sent a transition
SOURCE_HEADER = "ccpulse-source"
#: how long a fetch waits when there is nothing new
FETCH_WAIT_MS = 1000

Key = tuple[str, str, str]
Adopt = Callable[[Key, str], None]


def read_transition(value: bytes) -> tuple[Key, str] | None:
    """(region, channel, metric) and state of an alert message; None for a message that is not one."""
    try:
        alert = orjson.loads(value)
        return (alert["region"], alert["channel"], alert["metric"]), alert["state"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


class AlertFollower:
    """Reads the alerts topic on from each read-back's ends; hands foreign transitions to `adopt`."""

    def __init__(self, options: Mapping[str, Any], topic: str, source: bytes, adopt: Adopt) -> None:
        self.options = options
        self.topic = topic
        self.source = source
        self.adopt = adopt
        self._ends: dict[TopicPartition, int] | None = None
        #: moves on at every `follow_from`: a fetch begun before it may hold messages read back
        self._generation = 0
        self._moved = asyncio.Event()

    def follow_from(self, ends: dict[TopicPartition, int]) -> None:
        """Go on from these ends (the read-back's; a partition missing had no message then)."""
        self._ends = dict(ends)
        self._generation += 1
        self._moved.set()

    async def run(self) -> None:
        """Follow until cancelled; nothing is read before the first read-back."""
        consumer = reader(self.options, fetch_max_wait_ms=FETCH_WAIT_MS)
        await consumer.start()
        try:
            partitions = await all_partitions(consumer, self.topic)
            generation = None
            while True:
                if generation != self._generation:
                    await self._moved.wait()
                    self._moved.clear()
                    generation, ends = self._generation, self._ends or {}
                    for tp in partitions:
                        consumer.seek(tp, ends.get(tp, 0))
                batches = await consumer.getmany(timeout_ms=FETCH_WAIT_MS)
                if generation == self._generation:
                    self._take(batches)
        finally:
            await consumer.stop()

    def _take(self, batches: dict[TopicPartition, list[Any]]) -> None:
        for messages in batches.values():
            for message in messages:
                if (SOURCE_HEADER, self.source) in (message.headers or ()):
                    continue
                transition = read_transition(message.value)
                if transition is None:
                    continue  # the read-back counts and logs what is not an alert
                key, state = transition
                log.info("alerts topic: %s of %s/%s %s sent by another worker, taken as downstream's last word",
                         state, *key)
                self.adopt(key, state)
