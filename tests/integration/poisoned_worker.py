"""`ccpulse worker` whose stage one (`events`) or stage two (`facts`) raises on the first message it handles.

No input of the real stages can make them raise (bad input is dead-lettered), so this stands in
for a bug: the test starts it as a subprocess to see what the worker does when a stage fails.
Usage: python poisoned_worker.py events|facts worker [ccpulse worker options]
"""

from __future__ import annotations

import sys
from typing import Any

from streams import cli
from streams.streaming.regional import RegionalStage
from streams.streaming.tracking import TrackingStage


def main() -> int:
    stage, argv = sys.argv[1], sys.argv[2:]

    def poisoned_events(self: Any, partition: int, messages: list[Any]) -> Any:
        raise RuntimeError(f"poisoned by {messages[0].value!r}")

    def poisoned_facts(self: Any, raw: bytes, *position: int) -> Any:
        raise RuntimeError(f"poisoned by {raw!r}")

    if stage == "events":
        TrackingStage.handle = poisoned_events  # type: ignore[method-assign]
    elif stage == "facts":
        RegionalStage.handle = poisoned_facts  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown stage {stage!r}: events or facts")
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
