"""Instructions per event, counted by valgrind: figures the VM's speed does not move.

Usage: python benchmarks/instructions.py [--events 100000] [--seed 7] [--parts core,stage-one,stage-two] [--json FILE]

The shared VM's speed swings by a third and more within minutes, so a change worth a few percent
is lost in events/s; the number of instructions executed is not (it repeats to within ~0.1 % with
the hash seed fixed). The first N events of a simulated day of all regions (a fixed start, so
every run reads the same lines) are written to a file; this script then runs itself twice per
part under valgrind (cachegrind without cache simulation, ~50 times slower than native): once
setting up, once also passing the events through the part. The difference, divided by N, is the
figure. The parts:

- `core`: `Engine.process_lines` (what `ccpulse replay` and core_throughput.py run);
- `stage-one`: a worker's stage one handling the events (`TrackingStage.handle`, in fetches of
  500 as the intake takes them, as aiokafka's messages made beforehand) and encoding its facts
  messages;
- `stage-two`: stage two applying those facts messages (`RegionalStage.handle`, with the
  Prometheus fact series as its observer); the messages are made beforehand, outside valgrind.

Kafka's client, the publisher and the scrape are not in any part. What the count cannot show is
the cost of memory: a table larger than the CPU's caches is slow without executing more
instructions, so a change is confirmed in events/s too (`core_throughput.py`, the two versions
alternating: this VM's two vCPUs slow each other down, so not both at once).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiokafka.structs import ConsumerRecord
from core_throughput import FETCH_EVENTS, event_messages, replay_engine
from prometheus_client import CollectorRegistry

from streams import config
from streams.core.timefmt import now_ms, parse_rfc3339
from streams.exposition import Exposition
from streams.simulate.generator import SimConfig, Simulation
from streams.streaming.regional import RegionalStage
from streams.streaming.tracking import TrackingStage

#: a fixed start: the same events in every run (a Monday, midnight UTC)
START = "2026-01-12T00:00:00Z"
#: facts partitions of stage one's output (the default topic layout's count does not change the work)
FACTS_PARTITIONS = 4
EVENTS, FACTS = "events.jsonl", "facts.txt"
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def write_events(path: Path, count: int, seed: int) -> None:
    sim = SimConfig(start_ms=parse_rfc3339(START), seed=seed, duration_s=None, count=count)
    with path.open("wb") as fh:
        for _, _, value in Simulation(sim):
            fh.write(value + b"\n")


def stage_one_messages(stage: TrackingStage, events: list[ConsumerRecord]) -> list[tuple[int, bytes]]:
    """Stage one over the events, fetch by fetch: its facts messages as (facts partition, value)."""
    messages = []
    for start in range(0, len(events), FETCH_EVENTS):
        stage.handle(0, events[start:start + FETCH_EVENTS])
        messages += stage.take_facts()
        stage.take_accepted()
    return messages


def write_facts(events: Path, path: Path) -> None:
    """Stage one's facts messages of the events, one a line: the facts partition, a space, the value."""
    lines = events.read_bytes().splitlines()
    messages = stage_one_messages(TrackingStage(config.load(), FACTS_PARTITIONS), event_messages(lines, now_ms()))
    path.write_bytes(b"".join(b"%d %s\n" % (partition, value) for partition, value in messages))


def count_core(process: bool, directory: Path) -> None:
    lines = (directory / EVENTS).read_bytes().splitlines()
    engine = replay_engine()
    if process:
        engine.process_lines(lines)
        if engine.accepted == 0:
            sys.exit("no event was accepted")


def count_stage_one(process: bool, directory: Path) -> None:
    events = event_messages((directory / EVENTS).read_bytes().splitlines(), now_ms())
    gc.collect()
    gc.freeze()  # a worker holds a fetch of messages at a time, not all: its collector does not walk them
    stage = TrackingStage(config.load(), FACTS_PARTITIONS)
    if process and not stage_one_messages(stage, events):
        sys.exit("stage one made no facts")


def count_stage_two(process: bool, directory: Path) -> None:
    messages = [line.split(b" ", 1) for line in (directory / FACTS).read_bytes().splitlines()]
    settings = config.load()
    exposition = Exposition(settings, CollectorRegistry())
    stage_two = RegionalStage(settings, observer=exposition.observe, region_event=exposition.region_event)
    if process:
        offsets = [0] * FACTS_PARTITIONS
        for number, value in messages:
            partition = int(number)
            stage_two.handle(value, partition, offsets[partition])
            offsets[partition] += 1
        if stage_two.as_of is None:
            sys.exit("stage two saw no watermark")


#: what valgrind runs for each part: its setup alone (process=False), or the setup and the work
PARTS = {"core": count_core, "stage-one": count_stage_one, "stage-two": count_stage_two}


def count_instructions(part: str, mode: str, directory: Path) -> int:
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
               sys.executable, __file__, "--inner", part, mode, str(directory)]
    proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=3600,
                          env={**os.environ, "PYTHONHASHSEED": "0"})
    found = _REFS.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run ({part}, {mode}) failed, exit {proc.returncode}:\n{proc.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def parse_parts(text: str) -> list[str]:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        raise argparse.ArgumentTypeError(f"parts are {', '.join(PARTS)}; got {text!r}")
    return parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events counted (default 100,000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--parts", type=parse_parts, default=list(PARTS),
                        help=f"comma-separated, of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--json", help="also write the figures here as JSON")
    parser.add_argument("--inner", nargs=3, metavar=("PART", "MODE", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        part, mode, directory = args.inner
        PARTS[part](mode == "process", Path(directory))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    results = {}
    with tempfile.TemporaryDirectory(prefix="ccpulse-instructions-") as tmp:
        directory = Path(tmp)
        write_events(directory / EVENTS, args.events, args.seed)
        if "stage-two" in args.parts:
            write_facts(directory / EVENTS, directory / FACTS)
        print(f"{args.events:,} events from {START} written; counting {', '.join(args.parts)} under valgrind, "
              f"twice each (about {max(10, args.events // 6000)} s a run) ...", file=sys.stderr, flush=True)
        for part in args.parts:
            started = time.monotonic()
            setup = count_instructions(part, "setup", directory)
            total = count_instructions(part, "process", directory)
            per_event = (total - setup) / args.events
            print(f"{part}: {per_event:,.0f} instructions per event over the first {args.events:,} events of a "
                  f"simulated day (setup {setup:,}, with the events {total:,}; valgrind took "
                  f"{time.monotonic() - started:.0f} s)", flush=True)
            results[part] = {"setup_instructions": setup, "total_instructions": total,
                             "instructions_per_event": per_event}
    if args.json:
        result = {"events": args.events, "seed": args.seed, "start": START, "parts": results}
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
