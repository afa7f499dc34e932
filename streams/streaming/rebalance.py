"""One rebalance listener for both stages' consumers.

aiokafka logs what a listener raises and goes on. A stage whose state could not be made to match
its new assignment (stage one's rebuild failed, stage two's seeks failed) must not go on handling
messages as if it had: the listener keeps the failure, and the stage's loop raises it at its next
turn (the worker then exits, and its restart rebuilds from the topics).
"""

from __future__ import annotations

from typing import Protocol

from aiokafka import ConsumerRebalanceListener, TopicPartition


class Stage(Protocol):
    async def on_revoked(self, revoked: set[TopicPartition]) -> None: ...

    async def on_assigned(self, assigned: set[TopicPartition]) -> None: ...


class StageRebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, stage: Stage, failure: str) -> None:
        self.stage = stage
        #: what the stage could not do, said when the failure is raised
        self.failure = failure
        self.error: BaseException | None = None

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.stage.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        try:
            await self.stage.on_assigned(assigned)
        except Exception as exc:
            self.error = exc
            raise

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise RuntimeError(self.failure) from self.error
