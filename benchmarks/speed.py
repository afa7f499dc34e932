"""The VM's speed at a moment, so that a run's figures can be read against the spell they ran in.

This VM runs slower by a third and more within minutes as its neighbours come and go (the CPU
itself runs slower; the process still gets its whole time slice). A fixed pure-Python loop timed
beside a figure tells whether the code or the machine moved."""

from __future__ import annotations

import statistics
import time

#: about 0.2 s a try on this VM at its usual speed
LOOP_ITERATIONS = 2_000_000


def loop_rate(iterations: int = LOOP_ITERATIONS, tries: int = 3) -> float:
    """Millions of iterations a second of a fixed pure-Python loop, the median of `tries`."""
    rates = []
    for _ in range(tries):
        total = 0
        started = time.perf_counter()
        for number in range(iterations):
            total += number & 7
        rates.append(iterations / (time.perf_counter() - started) / 1e6)
    return statistics.median(rates)
