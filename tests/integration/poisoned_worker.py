"""`ccpulse worker` with one extra agent that raises on the first message of its topic, or (with
`events` for the topic) a stage one that raises on a message of the events topic.

No input of the real agents can make them raise (bad input is dead-lettered), so this stands in
for a bug: the test starts it as a subprocess to see what the worker does when an agent fails.
Usage: python poisoned_worker.py POISON_TOPIC|events worker [ccpulse worker options]
"""

from __future__ import annotations

import sys
from typing import Any

import streams.streaming.app as app_module
from streams import cli
from streams.streaming.tracking import TrackingStage


def main() -> int:
    poison_topic, argv = sys.argv[1], sys.argv[2:]
    build_app = app_module.build_app

    def build_poisoned_app(*args: Any, **kwargs: Any) -> app_module.Worker:
        worker = build_app(*args, **kwargs)

        @worker.app.agent(worker.app.topic(poison_topic, partitions=1))
        async def poisoned(stream: Any) -> None:
            async for value in stream:
                raise RuntimeError(f"poisoned by {value!r}")

        return worker

    def handle_poisoned(stage: TrackingStage, raw: bytes, partition: int, offset: int) -> Any:
        raise RuntimeError(f"poisoned by {raw!r}")

    if poison_topic == "events":
        TrackingStage.handle = handle_poisoned  # type: ignore[method-assign]
    else:
        app_module.build_app = build_poisoned_app
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
