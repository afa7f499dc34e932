"""Noticing a partition that is assigned but no longer read.

A consumer that stops fetching a partition (a client bug, a seek gone wrong) leaves its regions
silently stale: the worker reports ready, no consumer-lag series covers the never-committed facts
topic, and a region whose series never appear cannot trip a "region silent" rule. So stage two
watches its own progress: a partition whose end offset is past what its stage has handled, and
whose handled position has not moved for `stall_after_s`, is stalled (logged and counted in
`ccpulse_stalled_partitions`, which an alert and the pipeline dashboard read).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

Partition = TypeVar("Partition")
#: a partition with messages waiting whose handled position has not moved for this long is stalled
STALL_AFTER_S = 30.0


class StallWatch(Generic[Partition]):
    """Remembers since when each partition's handled position has stood still with messages waiting."""

    def __init__(self, stall_after_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_after_s = stall_after_s
        self.clock = clock
        #: partition -> (handled position, when it was first seen there with messages waiting)
        self._standing: dict[Partition, tuple[int, float]] = {}

    def observe(self, positions: Mapping[Partition, int], ends: Mapping[Partition, int]) -> list[Partition]:
        """The partitions stalled now, given the next offset to be handled of each assigned partition
        and their end offsets (a partition with no position yet is taken as read to its end)."""
        now = self.clock()
        standing: dict[Partition, tuple[int, float]] = {}
        stalled = []
        for partition, end in ends.items():
            position = positions.get(partition, end)
            if position >= end:
                continue  # nothing waiting
            before = self._standing.get(partition)
            since = before[1] if before is not None and before[0] == position else now
            standing[partition] = (position, since)
            if now - since >= self.stall_after_s:
                stalled.append(partition)
        self._standing = standing
        return stalled

    def reset(self) -> None:
        """Forget every position (after a rebalance: partitions new to the worker start over)."""
        self._standing = {}
