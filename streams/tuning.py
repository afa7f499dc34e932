"""Process-wide settings for long runs that allocate many small objects.

The pipeline keeps hundreds of thousands of small dicts alive (contact state, buckets); with
CPython's default thresholds the cyclic collector re-scans them so often that it costs about a
fifth of the throughput (measured with benchmarks/core_throughput.py). Nothing here creates
reference cycles in the hot path, so collecting less often only delays freeing rare cycles.
"""

from __future__ import annotations

import gc

#: first-generation threshold: objects allocated (net) before a young collection
YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Collect young objects less often and keep objects alive at start-up out of later scans."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, max(middle, 20), max(old, 100))
