"""Stage one's rebalance listener: aiokafka swallows what a listener raises, so a failed rebuild
must be kept for the intake's loop to raise (handling a partition from an empty state would
publish wrong numbers without a word)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from streams.streaming.intake import _Rebalance


class FailingRebuild:
    broken: BaseException | None = None

    async def on_assigned(self, assigned: Any) -> None:
        raise KafkaConnectionError("the broker went away while the partition was read again")


def test_a_failed_rebuild_is_kept_for_the_intake_to_raise() -> None:
    intake = FailingRebuild()
    listener = _Rebalance(intake)  # type: ignore[arg-type]
    with pytest.raises(KafkaConnectionError):
        asyncio.run(listener.on_partitions_assigned(set()))
    assert isinstance(intake.broken, KafkaConnectionError)
