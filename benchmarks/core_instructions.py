"""Instructions per event of the core, counted by valgrind: a figure the VM's speed does not move.

Usage: python benchmarks/core_instructions.py [--events 100000] [--seed 7] [--json FILE]

The shared VM's speed swings by a third and more within minutes, so a change worth a few percent
is lost in events/s; the number of instructions executed is not (it repeats to within ~0.1 % with
the hash seed fixed). The first N events of a simulated day of all regions (a fixed start, so
every run reads the same lines) are written to a file; this script then runs itself twice under
valgrind (cachegrind without cache simulation, ~50 times slower than native): once reading the
lines and building an engine, once also passing them through `Engine.process_lines`. The
difference, divided by N, is the figure. What it cannot show is the cost of memory: a table
larger than the CPU's caches is slow without executing more instructions, so a change is
confirmed in events/s too (`core_throughput.py`, both versions at once, one per core).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core_throughput import replay_engine

from streams.core.timefmt import parse_rfc3339
from streams.simulate.generator import SimConfig, Simulation

#: a fixed start: the same events in every run (a Monday, midnight UTC)
START = "2026-01-12T00:00:00Z"
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def write_events(path: Path, count: int, seed: int) -> None:
    sim = SimConfig(start_ms=parse_rfc3339(START), seed=seed, duration_s=None, count=count)
    with path.open("wb") as fh:
        for _, _, value in Simulation(sim):
            fh.write(value + b"\n")


def inner(mode: str, path: str) -> None:
    """What valgrind runs: the setup alone ('setup'), or the setup and the events ('process')."""
    lines = Path(path).read_bytes().splitlines()
    engine = replay_engine()
    if mode == "process":
        engine.process_lines(lines)
        if engine.accepted == 0:
            sys.exit("no event was accepted")


def count_instructions(mode: str, path: Path) -> int:
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
               sys.executable, __file__, "--inner", mode, str(path)]
    proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=3600,
                          env={**os.environ, "PYTHONHASHSEED": "0"})
    found = _REFS.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run ({mode}) failed, exit {proc.returncode}:\n{proc.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events counted (default 100,000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", help="also write the figures here as JSON")
    parser.add_argument("--inner", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(*args.inner)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ccpulse-instructions-") as tmp:
        path = Path(tmp) / "events.jsonl"
        write_events(path, args.events, args.seed)
        print(f"{args.events:,} events from {START} written; counting under valgrind, twice "
              f"(about {max(10, args.events // 6000)} s each) ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        setup = count_instructions("setup", path)
        total = count_instructions("process", path)
        elapsed = time.monotonic() - started
    per_event = (total - setup) / args.events
    print(f"core: {per_event:,.0f} instructions per event over the first {args.events:,} events of a simulated "
          f"day (setup {setup:,}, with the events {total:,}; valgrind took {elapsed:.0f} s)")
    if args.json:
        result = {"events": args.events, "seed": args.seed, "start": START, "setup_instructions": setup,
                  "total_instructions": total, "instructions_per_event": per_event}
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
