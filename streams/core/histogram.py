"""Fixed, mergeable wait-time bins.

A window's wait distribution is the sum of its minute buckets' bins, so percentiles can be read
for any window, channel or region rollup without keeping individual waits. Bins are 1 s wide up
to 20 s and then grow by 5 %, so reporting a bin's upper edge stays within max(1 s, 5 %) of the
exact nearest-rank value, as the spec allows.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping

LINEAR_LIMIT_US = 20_000_000
GROWTH = 1.05
#: the largest edge: 60 days; larger waits fall in the last bin and are clamped to the max
LAST_EDGE_US = 60 * 86_400_000_000


def _edges() -> tuple[int, ...]:
    edges = list(range(0, LINEAR_LIMIT_US + 1, 1_000_000))
    edge = float(LINEAR_LIMIT_US)
    while edges[-1] < LAST_EDGE_US:
        edge *= GROWTH
        edges.append(math.floor(edge))
    return tuple(edges)


EDGES_US: tuple[int, ...] = _edges()
_LAST_BIN = len(EDGES_US) - 1


def bin_of(value_us: int) -> int:
    """Index of the bin (EDGES[i-1], EDGES[i]] holding the value; bin 0 holds exactly 0."""
    index = bisect_left(EDGES_US, value_us)
    return index if index <= _LAST_BIN else _LAST_BIN


def percentile_us(bins: Mapping[int, int], total: int, percent: float, max_us: int) -> int:
    """Nearest-rank percentile: the upper edge of the bin holding rank ceil(p/100 * total)."""
    rank = max(1, math.ceil(percent / 100 * total))
    seen = 0
    for index in sorted(bins):
        seen += bins[index]
        if seen >= rank:
            return min(EDGES_US[index], max_us)
    return max_us
