"""The stall watch: which assigned partitions have messages waiting and no progress for a while."""

from __future__ import annotations

from streams.streaming.watchdog import StallWatch


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def watch(stall_after_s: float = 30) -> tuple[StallWatch[int], Clock]:
    clock = Clock()
    return StallWatch(stall_after_s, clock), clock


def test_a_partition_standing_still_with_messages_waiting_is_stalled_after_the_threshold() -> None:
    stalls, clock = watch()
    assert stalls.observe({0: 5}, {0: 9}) == []
    clock.now += 29.9
    assert stalls.observe({0: 5}, {0: 9}) == []
    clock.now += 0.1
    assert stalls.observe({0: 5}, {0: 9}) == [0]
    clock.now += 60
    assert stalls.observe({0: 5}, {0: 12}) == [0], "more messages arriving is no progress"


def test_progress_restarts_the_clock() -> None:
    stalls, clock = watch()
    stalls.observe({0: 5}, {0: 100})
    clock.now += 25
    assert stalls.observe({0: 6}, {0: 100}) == []
    clock.now += 25
    assert stalls.observe({0: 6}, {0: 100}) == []
    clock.now += 5
    assert stalls.observe({0: 6}, {0: 100}) == [0]


def test_a_partition_read_to_its_end_is_never_stalled() -> None:
    stalls, clock = watch()
    for _ in range(5):
        assert stalls.observe({0: 9, 1: 0}, {0: 9, 1: 0}) == []
        clock.now += 60


def test_a_partition_nothing_was_handled_of_counts_from_where_reading_starts() -> None:
    """The caller passes the start offset for a partition not yet read; one missing counts as caught up."""
    stalls, clock = watch()
    stalls.observe({0: 0}, {0: 3, 1: 7})
    clock.now += 31
    assert stalls.observe({0: 0}, {0: 3, 1: 7}) == [0]


def test_only_the_stalled_partitions_are_named() -> None:
    stalls, clock = watch()
    stalls.observe({0: 5, 1: 5, 2: 5}, {0: 9, 1: 9, 2: 5})
    clock.now += 31
    assert stalls.observe({0: 5, 1: 8, 2: 5}, {0: 9, 1: 9, 2: 5}) == [0]


def test_reset_and_unassignment_forget_the_standing_position() -> None:
    stalls, clock = watch()
    stalls.observe({0: 5}, {0: 9})
    clock.now += 20
    stalls.reset()
    clock.now += 20
    assert stalls.observe({0: 5}, {0: 9}) == [], "after a rebalance, positions start over"
    clock.now += 20
    assert stalls.observe({}, {}) == []  # partition 0 moved to another worker
    clock.now += 20
    assert stalls.observe({0: 5}, {0: 9}) == [], "assigned again: counts from now"
    clock.now += 30
    assert stalls.observe({0: 5}, {0: 9}) == [0]
