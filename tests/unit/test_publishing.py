"""The publisher's schedule: rounds timed by their sends, and no record key twice within the interval."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator

import pytest

from streams.streaming.publishing import (
    DOUBT_HEARTBEATS,
    PAUSE_BACKLOG,
    PAUSE_STEADY,
    Handover,
    KeySpacing,
    Round,
    next_start,
)


def test_the_next_build_ends_an_interval_after_the_last_round_began_sending() -> None:
    last = Round(started=10.0, built=10.3, sending=10.3, finished=10.4)
    assert next_start(last, 1.0, backlogged=False) == pytest.approx(11.0)


def test_a_wait_before_sending_moves_the_next_round_by_as_much() -> None:
    last = Round(started=10.0, built=10.1, sending=10.25, finished=10.3)
    assert next_start(last, 1.0, backlogged=False) == pytest.approx(11.15)


def test_a_long_round_is_followed_by_a_pause_in_proportion_to_its_work() -> None:
    long = Round(started=10.0, built=10.6, sending=10.6, finished=10.8)
    assert next_start(long, 1.0, backlogged=False) == pytest.approx(10.8 + PAUSE_STEADY * 0.8)
    short = Round(started=10.0, built=10.2, sending=10.5, finished=10.6)  # 0.3 s waiting, 0.3 s busy
    assert next_start(short, 1.0, backlogged=True) == pytest.approx(10.6 + PAUSE_BACKLOG * 0.3)


def test_a_key_waits_until_an_interval_after_its_last_send() -> None:
    spacing = KeySpacing(1.0)
    assert spacing.wait(b"RU-MOW|voice|15m", 5.0) == 0.0
    spacing.sent(b"RU-MOW|voice|15m", 5.0)
    assert spacing.wait(b"RU-MOW|voice|15m", 5.75) == pytest.approx(0.25)
    assert spacing.wait(b"RU-MOW|voice|15m", 6.0) == 0.0
    assert spacing.wait(b"RU-SPE|voice|15m", 5.75) == 0.0


def rounds(builds_s: list[float], keys: list[bytes], send_s: float = 0.001) -> tuple[list[Round], list[list[float]]]:
    """Rounds run as the publisher runs them, with the given build times: each round's record, and
    each key's send times."""
    spacing = KeySpacing(1.0)
    done: list[Round] = []
    sends: dict[bytes, list[float]] = {key: [] for key in keys}
    started = 0.0
    for build_s in builds_s:
        now = built = started + build_s
        sending = None
        for key in keys:
            now += spacing.wait(key, now)
            sending = now if sending is None else sending
            sends[key].append(now)
            spacing.sent(key, now)
            now += send_s
        done.append(Round(started, built, sending, now))
        started = next_start(done[-1], 1.0, backlogged=False)
    return done, list(sends.values())


def test_sends_of_a_key_are_never_closer_than_the_interval() -> None:
    builds = [0.4, 0.1, 0.3, 0.0, 0.25, 0.25, 0.05]
    _, sends = rounds(builds, [f"R{number}|voice|5m".encode() for number in range(50)])
    assert min(later - earlier for times in sends for earlier, later in itertools.pairwise(times)) >= 1.0 - 1e-9


def test_rounds_keep_an_interval_apart_and_a_faster_build_brings_the_sends_back() -> None:
    """Rounds are an interval apart when their builds take as long; after a slow build (0.4 s) the
    sends come an interval after the last ones, and once the builds are fast again, each round's
    records are sent as soon as they are built."""
    done, _ = rounds([0.2, 0.2, 0.2, 0.4, 0.1, 0.1, 0.1], [b"RU-MOW|voice|5m"])
    starts = [r.started for r in done]
    assert [later - earlier for earlier, later in itertools.pairwise(starts[:3])] == pytest.approx([1.0, 1.0])
    sendings = [r.sending for r in done]
    assert sendings[3] - sendings[2] == pytest.approx(1.2)  # the slow build made it late
    assert sendings[4] - sendings[3] == pytest.approx(1.0)  # the fast build after it waited
    assert [r.sending - r.built for r in done[5:]] == pytest.approx([0.0, 0.0])  # then none


async def settle() -> None:
    """Let every task that can run do so (the loop runs only this test's tasks)."""
    for _ in range(10):
        await asyncio.sleep(0)


class Steps:
    """A round that sends only when told to, and a flush, noting what they did in order."""

    def __init__(self) -> None:
        self.done: list[str] = []
        self.may_send = asyncio.Event()

    async def round(self) -> str:
        self.done.append("built")
        await self.may_send.wait()
        self.done.append("sent")
        return "round"

    async def flush(self) -> None:
        self.done.append("flushed")


async def test_a_handover_waits_for_the_round_in_progress_and_its_messages_to_be_written() -> None:
    steps = Steps()
    handover = Handover(steps.flush, heartbeat_interval_s=3.0)
    publishing = asyncio.create_task(handover.run_round(steps.round))
    await settle()
    beginning = asyncio.create_task(handover.begin())
    await settle()
    assert steps.done == ["built"] and not beginning.done()
    steps.may_send.set()
    await asyncio.wait_for(beginning, timeout=5)
    assert steps.done == ["built", "sent", "flushed"]
    assert publishing.result() == "round"


async def test_no_round_starts_between_the_beginning_and_the_end_of_a_handover() -> None:
    steps = Steps()
    steps.may_send.set()
    handover = Handover(steps.flush, heartbeat_interval_s=3.0)
    before = time.monotonic()
    await asyncio.wait_for(handover.begin(), timeout=5)
    publishing = asyncio.create_task(handover.run_round(steps.round))
    await settle()
    assert steps.done == ["flushed"] and not publishing.done()
    held_s = handover.end()
    elapsed_s = time.monotonic() - before
    assert await asyncio.wait_for(publishing, timeout=5) == "round"
    assert steps.done == ["flushed", "built", "sent"]
    assert held_s is not None and 0 <= held_s <= elapsed_s
    assert handover.end() is None, "no handover under way: nothing was held"


async def test_a_round_waiting_for_the_lock_when_a_handover_begins_waits_for_its_end() -> None:
    steps = Steps()
    handover = Handover(steps.flush, heartbeat_interval_s=3.0)
    first = asyncio.create_task(handover.run_round(steps.round))
    await settle()
    second = asyncio.create_task(handover.run_round(steps.round))  # queued behind the first round
    await settle()
    beginning = asyncio.create_task(handover.begin())
    steps.may_send.set()
    await asyncio.wait_for(asyncio.gather(first, beginning), timeout=5)
    await settle()
    assert steps.done == ["built", "sent", "flushed"] and not second.done()
    handover.end()
    await asyncio.wait_for(second, timeout=5)
    assert steps.done == ["built", "sent", "flushed", "built", "sent"]


class Sends:
    """A round of three sends, each cleared by the handover first; the event loop stands still (the
    process paused) after the first send of the first round when `standstill_s` is set."""

    def __init__(self, standstill_s: float) -> None:
        self.handover = Handover(self.flush, heartbeat_interval_s=1.0)
        self.standstill_s = standstill_s
        self.done: list[str] = []

    async def round(self) -> str:
        for number in (1, 2, 3):
            await self.handover.cleared()
            self.done.append(f"sent {number}")
            if self.standstill_s:
                time.sleep(self.standstill_s)  # blocks the event loop, as a paused process would
                self.standstill_s = 0.0
        return "round"

    async def flush(self) -> None:
        self.done.append("flushed")


@contextlib.asynccontextmanager
async def watched(standstill_s: float) -> AsyncIterator[Sends]:
    """`Sends` whose handover watches the event loop for the duration."""
    sends = Sends(standstill_s)
    keeping_time = asyncio.create_task(sends.handover.keep_time())
    await settle()
    try:
        yield sends
    finally:
        keeping_time.cancel()


async def test_after_a_standstill_the_next_send_waits_for_the_group_then_goes_on() -> None:
    async with watched(standstill_s=1.5) as sends:
        handover = sends.handover
        started = time.monotonic()
        assert await asyncio.wait_for(handover.run_round(sends.round), timeout=10) == "round"
        assert sends.done == ["sent 1", "sent 2", "sent 3"], "no rebalance came: the round went on"
        waited_s = DOUBT_HEARTBEATS * handover.heartbeat_interval_s
        assert time.monotonic() - started >= 1.5 + waited_s - 0.1, "the send after the standstill waited for the group"
        after = asyncio.create_task(handover.cleared())
        await settle()
        assert after.done(), "the doubt is over: sends no longer wait"


async def test_a_rebalance_after_a_standstill_abandons_the_round_and_its_remaining_sends() -> None:
    async with watched(standstill_s=1.5) as sends:
        handover = sends.handover
        publishing = asyncio.create_task(handover.run_round(sends.round))
        await settle()
        assert sends.done == ["sent 1"], "the send after the standstill waits for the group's word"
        await asyncio.wait_for(handover.begin(), timeout=5)  # the revoke: this worker was expelled
        assert sends.done == ["sent 1", "flushed"]
        assert not publishing.done(), "the round is run again once the new assignment is taken over"
        handover.end()
        assert await asyncio.wait_for(publishing, timeout=5) == "round"
        assert sends.done == ["sent 1", "flushed", "sent 1", "sent 2", "sent 3"]


async def test_a_pause_shorter_than_a_heartbeat_raises_no_doubt() -> None:
    async with watched(standstill_s=0.3) as sends:
        handover = sends.handover
        publishing = asyncio.create_task(handover.run_round(sends.round))
        await settle()
        assert publishing.done() and sends.done == ["sent 1", "sent 2", "sent 3"]
