"""The stages' rebalance listener: aiokafka swallows what a listener raises, so a stage that could
not take its new assignment over (a failed rebuild, a failed seek) must have the failure raised by
its own loop (handling a partition from an empty state would publish wrong numbers without a word)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from streams.streaming.rebalance import StageRebalance


class FailingRebuild:
    async def on_revoked(self, revoked: Any) -> None:
        pass

    async def on_assigned(self, assigned: Any) -> None:
        raise KafkaConnectionError("the broker went away while the partition was read again")


def test_a_failed_assignment_is_kept_for_the_stage_to_raise() -> None:
    listener = StageRebalance(FailingRebuild(), "stage one could not rebuild")
    listener.raise_if_failed()  # nothing failed yet
    with pytest.raises(KafkaConnectionError):
        asyncio.run(listener.on_partitions_assigned(set()))
    with pytest.raises(RuntimeError, match="stage one could not rebuild") as raised:
        listener.raise_if_failed()
    assert isinstance(raised.value.__cause__, KafkaConnectionError)
