"""Process-wide settings for long runs that allocate many small objects.

The pipeline keeps hundreds of thousands of small dicts and lists alive (contact state, buckets);
with CPython's default thresholds the cyclic collector re-scans them so often that it costs about
a fifth of the throughput (measured with benchmarks/core_throughput.py). Nothing here creates
reference cycles in the hot path, so collecting less often only delays freeing rare cycles.
"""

from __future__ import annotations

import gc

#: first-generation threshold: objects allocated (net) before a young collection
YOUNG_THRESHOLD = 50_000


def tune_gc(*, freeze_survivors: bool = False) -> None:
    """Collect young objects less often and keep objects alive at start-up out of later scans.

    `freeze_survivors` (replay, which runs the core alone): also freeze what survives each
    collection. In the core that is state, which has no reference cycles and is still freed by
    reference counting when released, so no collection needs to scan it again (+~13 % events/s).
    The one cycle is the engine itself (its tracker and aggregator hold tables of their own bound
    methods), which replay keeps for the life of the process anyway. Not for the worker: asyncio's
    tasks and futures do form cycles, and one alive during a collection would never be freed."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, max(middle, 20), max(old, 100))
    if freeze_survivors and _freeze_after_collection not in gc.callbacks:
        gc.callbacks.append(_freeze_after_collection)


def _freeze_after_collection(phase: str, info: dict[str, int]) -> None:
    if phase == "stop":
        gc.freeze()
