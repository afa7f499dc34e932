"""Core throughput and memory on a simulated day: JSON lines in, updated buckets out, one core.

Usage: python benchmarks/core_throughput.py [--hours 24] [--seed 7] [--regions RU-MOW,...] [--split] [--json FILE]

The events are generated first (not timed) and kept as raw JSON lines, as they would arrive
from Kafka or a replay file; then they go through `Engine.process_lines`, as `ccpulse replay`
hands them over (decode, validate, deduplicate, track, aggregate, a chunk of lines at a time),
four times with a fresh engine: a cold pass, the process's first, whose state's memory is new to it
(page faults, which the VM makes costly), then three warm ones, whose median is the figure (the VM's
speed, benchmarks/speed.py, is taken before each pass); then through stage one's `rebuild`
(what a worker does with its partitions' retained events after an assignment: decode and track,
no facts). `--split` also times the three parts on their own (each fed the previous part's
output, made beforehand), to see where the time goes. Memory is the traced size of the engine's
state, sampled every simulated hour, so one can see whether released state keeps it flat.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from typing import Any

from aiokafka.structs import ConsumerRecord
from speed import loop_rate

from streams import config
from streams.core.engine import Engine
from streams.core.events import Rejected, decode
from streams.core.timefmt import now_ms
from streams.simulate.generator import SimConfig, Simulation
from streams.streaming.tracking import TrackingStage
from streams.tuning import tune_gc

HOUR_MS = 3_600_000
#: warm passes over the same lines for the throughput figure (their median), after the cold one
PASSES = 3
#: events in one call to stage one, as in a worker's fetches from one partition
FETCH_EVENTS = 500


def generate(hours: float, seed: int, regions: tuple[str, ...]) -> list[bytes]:
    start = now_ms() - int((hours + 1) * HOUR_MS)
    sim = SimConfig(start_ms=start, seed=seed, duration_s=hours * 3600, regions=regions)
    return [value for _, _, value in Simulation(sim)]


def replay_engine() -> Engine:
    """A fresh engine with the collector set up as `ccpulse replay` sets it (freezing what survives)."""
    engine = Engine(config.load())
    gc.collect()
    tune_gc(freeze_survivors=True)
    return engine


def measure_throughput(lines: list[bytes], passes: int = PASSES) -> dict[str, Any]:
    """A cold pass, then the median of `passes` warm ones, each with a fresh engine.

    The cold pass is the process's first, as one `ccpulse replay` run: the state it builds all day
    is memory new to the process, every page of it a page fault, and on a VM the host may back each
    page only when it is first touched (6–17 µs a fault on the AMD EPYC VM, 2026-12-03, against
    ~1.5 µs for a page it already backs). The warm passes build the same state in memory the process
    already has, as a worker does once released state makes room for new: their user time is about
    the cold pass's, without the kernel's. The warm median is the core's figure; the VM's speed swings
    by a third with its neighbours, so one pass can land in a slow spell or a fast one."""
    cold, *warm = (timed_pass(lines) for _ in range(passes + 1))
    median = statistics.median(run["events_per_s"] for run in warm)
    last = warm[-1]
    return {"events": len(lines), "seconds": len(lines) / median, "events_per_s": median,
            "passes": [run["events_per_s"] for run in warm], "loop_rates": [run["loop_rate"] for run in warm],
            "kernel_s": [run["kernel_s"] for run in warm], "page_faults": [run["page_faults"] for run in warm],
            "cold": cold,
            "accepted": last["accepted"], "records": last["records"], "records_build_s": last["records_build_s"]}


def timed_pass(lines: list[bytes]) -> dict[str, Any]:
    """One pass of a fresh engine over the lines: its rate, the kernel's part of its time, the VM's
    speed just before it, and the records then built."""
    loop = loop_rate()
    engine = replay_engine()
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    engine.process_lines(lines)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    records = engine.records()
    records_s = time.perf_counter() - started
    accepted = engine.results["accepted"]
    del engine  # the engine is a reference cycle, frozen with its state: free it before the next pass
    gc.unfreeze()
    gc.collect()
    return {"events_per_s": len(lines) / elapsed, "seconds": elapsed, "loop_rate": loop,
            "kernel_s": after.ru_stime - before.ru_stime, "user_s": after.ru_utime - before.ru_utime,
            "page_faults": after.ru_minflt - before.ru_minflt, "accepted": accepted, "records": len(records),
            "records_build_s": records_s}


def event_messages(lines: list[bytes], arrived_ms: int, first_offset: int = 0) -> list[ConsumerRecord]:
    """The lines as stage one reads them from Kafka: messages of one partition from `first_offset`,
    all arrived at `arrived_ms`."""
    return [ConsumerRecord("events", 0, offset, arrived_ms, 0, None, line, None, -1, len(line), [])
            for offset, line in enumerate(lines, start=first_offset)]


def measure_rebuild(lines: list[bytes]) -> dict[str, float]:
    """Stage one reading its events partitions again after an assignment: decode and track, no facts."""
    stage = TrackingStage(config.load(), 12)
    arrived = now_ms()
    gc.collect()
    elapsed = 0.0
    for start in range(0, len(lines), FETCH_EVENTS):  # a fetch's messages made as aiokafka would, untimed
        fetch = event_messages(lines[start:start + FETCH_EVENTS], arrived, start)
        started = time.perf_counter()
        stage.rebuild(0, fetch)
        elapsed += time.perf_counter() - started
    return {"events": len(lines), "seconds": elapsed, "events_per_s": len(lines) / elapsed}


def measure_split(lines: list[bytes]) -> dict[str, float]:
    """Microseconds per event of decode+validate, of the tracker and of the aggregator, apart."""
    engine = Engine(config.load())
    regions, clock, future_ms = engine.regions, engine.processing_clock, engine.future_ms
    started = time.perf_counter()
    events = []
    for line in lines:
        try:
            events.append(decode(line, regions, clock, future_ms))
        except Rejected:
            continue
    decoded = time.perf_counter()
    facts = []
    track = engine.tracker.process
    for event in events:
        try:
            facts.extend(track(event) or ())
        except Rejected:
            continue
    tracked = time.perf_counter()
    engine.aggregator.apply(facts)
    aggregated = time.perf_counter()
    per_event = 1e6 / len(lines)
    return {"decode_us": (decoded - started) * per_event, "tracker_us": (tracked - decoded) * per_event,
            "aggregator_us": (aggregated - tracked) * per_event}


def measure_memory(lines: list[bytes]) -> list[tuple[float, float]]:
    """(simulated hours since the first event, MiB held by the engine) once per simulated hour."""
    engine = Engine(config.load())
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    samples = []
    first = next_sample = None
    for line in lines:
        engine.process_raw(line)  # one by one, to sample between events
        watermark = engine.watermark.value
        if watermark is None:
            continue
        if first is None:
            first, next_sample = watermark, watermark + HOUR_MS
        if watermark >= next_sample:
            samples.append(((watermark - first) / HOUR_MS, (tracemalloc.get_traced_memory()[0] - base) / 2**20))
            next_sample += HOUR_MS
    samples.append(((engine.watermark.value - first) / HOUR_MS,
                    (tracemalloc.get_traced_memory()[0] - base) / 2**20))
    tracemalloc.stop()
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours of all regions (default 24)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--regions", default="", help="comma-separated region codes (default: all)")
    parser.add_argument("--skip-memory", action="store_true", help="only measure throughput")
    parser.add_argument("--split", action="store_true", help="also time decode, tracker and aggregator apart")
    parser.add_argument("--json", help="also write the figures here as JSON")
    args = parser.parse_args()
    regions = tuple(code for code in args.regions.split(",") if code)

    print(f"generating {args.hours:g} simulated hours ...", file=sys.stderr, flush=True)
    lines = generate(args.hours, args.seed, regions)
    print(f"{len(lines):,} events generated; measuring throughput ...", file=sys.stderr, flush=True)
    result: dict[str, object] = {"machine": f"{platform.processor() or platform.machine()}, "
                                            f"Python {platform.python_version()}",
                                 "throughput": measure_throughput(lines)}
    figures = result["throughput"]
    cold = figures["cold"]
    print(f"core: {figures['events']:,} events, median of {len(figures['passes'])} warm passes "
          f"{figures['events_per_s']:,.0f} events/s on one core "
          f"({', '.join(f'{rate:,.0f}' for rate in figures['passes'])}; the VM's speed before each: "
          f"{', '.join(f'{rate:.1f}' for rate in figures['loop_rates'])} M loops/s; the kernel's seconds in each: "
          f"{', '.join(f'{kernel:.2f}' for kernel in figures['kernel_s'])}); "
          f"{figures['records']:,} records built in {figures['records_build_s']:.2f} s")
    print(f"core, cold (the process's first pass, as one `ccpulse replay` run): {cold['events_per_s']:,.0f} events/s "
          f"(after {cold['loop_rate']:.1f} M loops/s), {cold['kernel_s']:.2f} of its {cold['seconds']:.2f} s in the "
          f"kernel ({cold['page_faults']:,} page faults), {cold['user_s']:.2f} s of user time")
    rebuild = result["rebuild"] = measure_rebuild(lines)
    print(f"stage one rebuild (decode + track, no facts): {rebuild['events_per_s']:,.0f} events/s")
    if args.split:
        split = result["split_us_per_event"] = measure_split(lines)
        print("per event: " + ", ".join(f"{name[:-3]} {us:.2f} us" for name, us in split.items()))
    if not args.skip_memory:
        print("measuring memory (traced, slower) ...", file=sys.stderr, flush=True)
        samples = measure_memory(lines)
        result["memory_mib_by_hour"] = samples
        peak = max(mib for _, mib in samples)
        print("memory of the engine's state by simulated hour (MiB): "
              + ", ".join(f"{hour:.0f}h {mib:.0f}" for hour, mib in samples))
        print(f"peak state memory: {peak:.0f} MiB")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
