"""A worker's cold start: stage one reading every events partition again before it handles anything.

Usage: python benchmarks/cold_start.py [--days 31] [--seed 5] [--out benchmarks/out/cold-start]

Fills the events topic of its own Kafka with `--days` simulated days of all regions (31 is the
topic's retention), commits the intake group's offsets at the topic's end, as a worker that had
handled everything and stopped would have left them, then starts one worker. Owning every
partition, it reads all of them again (decode and track, nothing sent) before it handles a new
event, and meanwhile new events wait: this is the time a restarted worker of a whole operator is
behind. Prints the worker's own count and time (its "rebuilt" log line) and its RSS afterwards, and
writes them to `cold_start.json` in the out folder. Not part of run.py: a month is ~16 million
events, ~6 minutes to write and ~3 to read again on the reference VM.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from stack import REPO, Broker, TopicSet, Worker, preload, say, wait_for

from streams.core.timefmt import DAY_MS, HOUR_MS, now_ms
from streams.simulate.generator import SimConfig, Simulation

REBUILT = re.compile(r"rebuilt: (\d+) events read again in ([\d.]+) s")
#: events between two progress lines while the topic is written
PROGRESS_EVENTS = 1_000_000
#: the longest a rebuild may take before the run is called failed (a month took ~3 min)
REBUILD_TIMEOUT_S = 1800


def simulated(days: float, seed: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of `days` simulated days of all regions ending an hour ago, with progress lines."""
    start = now_ms() - int(days * DAY_MS) - HOUR_MS
    started = time.monotonic()
    for count, (_, key, value) in enumerate(Simulation(SimConfig(start_ms=start, seed=seed,
                                                                  duration_s=days * 86400)), 1):
        if count % PROGRESS_EVENTS == 0:
            say(f"  ... {count:,} events written in {time.monotonic() - started:.0f} s")
        yield key, value


def measure(broker: Broker, days: float, seed: int, out: Path) -> dict[str, float | None]:
    topics = TopicSet(broker, "cold")
    events_topic = topics.topic("events")
    say(f"writing {days:g} simulated days of all regions into {events_topic} ...")
    written = preload(broker.bootstrap, events_topic, topics.partitions, simulated(days, seed))
    broker.commit(f"{topics.app_id}-intake", events_topic, broker.end_offsets(events_topic))
    say(f"{written:,} events written, the intake's offsets committed at the end; starting one worker ...")
    started = time.monotonic()
    worker = Worker(topics, "cold-start", out, loglevel="info")
    try:
        def rebuilt() -> re.Match[str] | None:
            return REBUILT.search(worker.log_path.read_text(errors="replace"))
        # also done when the worker exits (wait_for would take a failed check for "not yet")
        wait_for(lambda: rebuilt() or not worker.running, REBUILD_TIMEOUT_S, "the worker's rebuild", interval=1.0)
        ready_s = time.monotonic() - started
        worker.check()
        found = rebuilt()
        assert found is not None
        rss = worker.rss()
    finally:
        worker.stop()
    events, seconds = int(found.group(1)), float(found.group(2))
    if events != written:
        raise RuntimeError(f"the worker read {events:,} events again, but {written:,} were written")
    # the worker logs tenths of a second: a tiny topic can read again in "0.0 s", which has no rate
    return {"days": days, "events": events, "rebuild_s": seconds,
            "events_per_s": events / seconds if seconds else None, "start_to_rebuilt_s": ready_s, "rss_mib": rss}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=31.0, help="simulated days in the events topic")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "cold-start"), help="output folder")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    broker = Broker(out / "kafka")
    say("starting Kafka ...")
    broker.start()
    try:
        result = measure(broker, args.days, args.seed, out)
    finally:
        say("stopping Kafka ...")
        broker.stop()
    rate = f" ({result['events_per_s']:,.0f} events/s)" if result["events_per_s"] else ""
    say(f"cold start: {result['events']:,} events ({args.days:g} simulated days) read again in "
        f"{result['rebuild_s']:.1f} s{rate}; worker start to rebuilt {result['start_to_rebuilt_s']:.0f} s; "
        f"worker RSS then {result['rss_mib']:.0f} MiB")
    (out / "cold_start.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
