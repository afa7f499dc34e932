"""Every ccpulse benchmark in one run, against its own Kafka, with a report against the targets.

Usage: python benchmarks/run.py [--quick] [--out benchmarks/out] [--profile]

Starts a broker with deploy/kafka.sh on a free port (stopped at the end, whatever happens), then:
core throughput and state memory (benchmarks/core_throughput.py, in its own process); the
instructions per event of the core and of a worker's two stages (benchmarks/instructions.py, under
valgrind, when installed); one and two workers end to end; the raw consume limit; Faust's own
floor (benchmarks/peers/faust_floor.py); the Faust and Quix Streams peers on the same events;
freshness at a steady 5,000 events/s; and writes OUT/report.md and OUT/report.json. `--quick` uses
small volumes (about 2.5 minutes; figures are not meaningful, it checks the harness). `--profile` also
runs one worker under cProfile and writes OUT/worker-profile.txt.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.util
import json
import os
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import contenders
import e2e
from report import MB_PER_MIB, Figure, machine, write
from speed import loop_rate
from stack import REPO, Broker, say

TARGETS = {"core": 150_000, "worker": 30_000, "limit_share": 50.0, "vs_faust": 2.0, "vs_quix": 1.0,
           "fresh_p99_s": 2.0, "rss_mb": 500.0}
#: instructions.py's parts, as the report names them
INSTRUCTION_PARTS = {"core": "core", "stage-one": "stage one (a worker's intake)",
                     "stage-two": "stage two (a worker's regional counting)"}


@dataclasses.dataclass(frozen=True)
class Plan:
    """Volumes and time caps of one run."""

    core_hours: float  # simulated hours of all regions for the core figures
    instruction_events: int  # events counted under valgrind
    hour_s: float  # simulated seconds of the busy hour pre-loaded for the throughput runs
    hour_volume: float  # times the natural volume
    worker_cap_s: float  # a throughput run slower than this is cut and rated on what it read
    worker_runs: int  # one-worker runs, each on its own pre-loaded topic; the median run is the figure
    peer_cap_s: float
    fresh_rate: int
    fresh_s: float
    fresh_warmup_s: float
    fresh_drain_s: float


FULL = Plan(core_hours=24, instruction_events=100_000, hour_s=3600, hour_volume=10, worker_cap_s=150, worker_runs=3,
            peer_cap_s=150, fresh_rate=5000, fresh_s=40, fresh_warmup_s=10, fresh_drain_s=30)
QUICK = Plan(core_hours=0.5, instruction_events=2_000, hour_s=600, hour_volume=2, worker_cap_s=20, worker_runs=1,
             peer_cap_s=15, fresh_rate=1000, fresh_s=6, fresh_warmup_s=2, fresh_drain_s=5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small volumes: checks the harness in a minute or two")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "out"), help="report folder")
    parser.add_argument("--profile", action="store_true", help="also profile one worker with cProfile")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the broker is stopped on SIGTERM too
    plan = QUICK if args.quick else FULL
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    details: dict[str, Any] = {"mode": "quick" if args.quick else "full", "plan": dataclasses.asdict(plan),
                               "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                               "load": [os.getloadavg()[0]]}
    figures: list[Figure] = []
    notes: list[str] = []
    say(f"ccpulse benchmarks ({details['mode']}), load average {details['load'][0]:.2f}")
    speeds = details["vm_speed"] = {}

    sample_speed(speeds, "at the start")
    core(plan, out, figures, details)
    instructions(plan, out, figures, details, notes)
    run_dir = Path(tempfile.mkdtemp(prefix="ccpulse-bench-kafka-"))
    broker = Broker(run_dir)
    kafka_line = ""
    try:
        say(f"starting Kafka on {broker.bootstrap} ...")
        kafka_line = broker.start()
        streaming(broker, plan, logs, figures, details, notes, speeds)
        if args.profile:
            try:
                profile(broker, plan, logs, out, notes)
            except (OSError, RuntimeError) as exc:  # the figures above still get their report
                say(f"profile failed: {exc}")
                notes.append(f"The worker profile failed: {exc}")
    finally:
        say("stopping Kafka ...")
        broker.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    details["load"].append(os.getloadavg()[0])
    sample_speed(speeds, "at the end")
    figure(figures, Figure("the VM's speed: a fixed pure-Python loop", statistics.median(speeds.values()),
                           "M loops/s", note="; ".join(f"{when} {rate:.1f}" for when, rate in speeds.items())))
    notes.append("The machine is shared (2 cores; other work was running): compare the load averages above "
                 "before reading much into a figure.")
    write(out, figures, details, machine(kafka_line), notes)
    say(f"report: {out / 'report.md'} and report.json")
    return 0


def core(plan: Plan, out: Path, figures: list[Figure], details: dict[str, Any]) -> None:
    """core_throughput.py in its own process (its traced day of state would stay in this one's heap)."""
    say(f"core: benchmarks/core_throughput.py --hours {plan.core_hours:g} (generation, timing, then traced memory) ...")
    path = out / "logs" / "core.json"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "core_throughput.py"), "--hours", str(plan.core_hours),
                    "--json", str(path)], check=True, timeout=1200)
    result = json.loads(path.read_text(encoding="utf-8"))
    speed = result["throughput"]
    passes = ", ".join(f"{rate:,.0f}" for rate in speed["passes"])
    cold = speed["cold"]
    figure(figures, Figure("core: JSON line → updated state, one core", speed["events_per_s"], "events/s",
                           f"≥ {TARGETS['core']:,} events/s", speed["events_per_s"] >= TARGETS["core"],
                           note=f"median of {len(speed['passes'])} warm passes: {passes}; the VM's speed before each: "
                                + ", ".join(f"{rate:.1f}" for rate in speed["loop_rates"]) + " M loops/s"))
    figure(figures, Figure("core, cold: the process's first pass, as one `ccpulse replay` run", cold["events_per_s"],
                           "events/s", note=f"{cold['kernel_s']:.2f} of its {cold['seconds']:.2f} s in the kernel, "
                                            f"faulting in its state's memory ({cold['page_faults']:,} page faults); "
                                            f"the warm passes' kernel time: "
                                            + ", ".join(f"{kernel:.2f} s" for kernel in speed["kernel_s"])))
    figure(figures, Figure("stage one rebuild after an assignment: decode + track, no facts",
                           result["rebuild"]["events_per_s"], "events/s"))
    peak = max(mib for _, mib in result["memory_mib_by_hour"]) * MB_PER_MIB
    figure(figures, Figure(f"core: peak state memory, {plan.core_hours:g} simulated h of all regions", peak, "MB",
                           note=f"{speed['events']:,} events, traced"))
    details["core"] = result


def instructions(plan: Plan, out: Path, figures: list[Figure], details: dict[str, Any], notes: list[str]) -> None:
    """instructions.py: the cost of the core and of a worker's two stages in a unit the VM's spells do
    not change."""
    if shutil.which("valgrind") is None:
        say("instruction counts skipped: valgrind is not installed (apt-get install valgrind)")
        notes.append("Instructions per event were not counted: valgrind is not installed.")
        return
    say(f"instructions: benchmarks/instructions.py --events {plan.instruction_events:,} (under valgrind) ...")
    path = out / "logs" / "instructions.json"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "instructions.py"), "--events",
                    str(plan.instruction_events), "--json", str(path)], check=True, timeout=3600)
    result = json.loads(path.read_text(encoding="utf-8"))
    for part, what in INSTRUCTION_PARTS.items():
        figure(figures, Figure(f"{what}: instructions per event (valgrind)",
                               result["parts"][part]["instructions_per_event"], "instructions",
                               note=f"first {result['events']:,} events of a simulated day from {result['start']}; "
                                    "repeats to ~0.1 %, whatever the VM's speed"))
    details["instructions"] = result


def streaming(broker: Broker, plan: Plan, logs: Path, figures: list[Figure], details: dict[str, Any],
              notes: list[str], speeds: dict[str, float]) -> None:
    say("generating the busy hour ...")
    data = e2e.busy_hour(plan.hour_s, plan.hour_volume)
    say(f"dataset: {data.description}")
    details["dataset"] = data.description
    count = len(data.events)

    runs = []
    for number in range(plan.worker_runs):
        sample_speed(speeds, f"before one-worker run {number + 1}")
        say(f"end to end, one worker (run {number + 1} of {plan.worker_runs}):")
        runs.append(e2e.throughput(broker, data, 1, logs, f"one{number}", plan.worker_cap_s))
    # the median run is the figure (the shared VM's speed swings by a third between minutes)
    one = sorted(runs, key=lambda run: run["events_per_s"])[len(runs) // 2]
    details["one_worker"] = one
    details["one_worker_runs"] = runs
    rates = ", ".join(f"{run['events_per_s']:,.0f}" for run in runs)
    figure(figures, Figure("end to end: one worker, events → records", one["events_per_s"], "events/s",
                           f"≥ {TARGETS['worker']:,} events/s", one["events_per_s"] >= TARGETS["worker"],
                           "; ".join(filter(None, (f"median of {len(runs)} runs: {rates}" if len(runs) > 1 else "",
                                                   capped(one, plan.worker_cap_s))))))
    rss_mb = max(run["rss_mib"][0] for run in runs) * MB_PER_MIB
    read = data.description if one["complete"] else f"cut at {plan.worker_cap_s:g} s: part of {data.description}"
    figure(figures, Figure("worker RSS after the simulated hour", rss_mb, "MB", f"≤ {TARGETS['rss_mb']:.0f} MB",
                           rss_mb <= TARGETS["rss_mb"], read + (", the largest of the runs" if len(runs) > 1 else "")))

    sample_speed(speeds, "before the limit and the peers")
    say("the limit: raw aiokafka + orjson consumer on the same topic ...")
    limit = contenders.raw_limit(broker, one["topic"], count)
    details["limit"] = limit
    figure(figures, Figure("limit: raw consumer (aiokafka + orjson)", limit["events_per_s"], "events/s"))
    share = 100 * one["events_per_s"] / limit["events_per_s"]
    figure(figures, Figure("one worker as a share of the limit", share, "%", f"≥ {TARGETS['limit_share']:.0f} %",
                           share >= TARGETS["limit_share"]))

    for name, label in (("faust-noop", "Faust agent doing nothing per event"),
                        ("faust-table", "Faust agent writing one table key per event")):
        say(f"Faust's floor: {label.lower()}, on the same topic ...")
        result = contenders.peer(broker, name, one["topic"], count, logs, plan.peer_cap_s)
        details[f"floor_{name}"] = result
        figure(figures, Figure(f"limit: {label}", result["events_per_s"], "events/s",
                               note=capped(result, plan.peer_cap_s)))
        figure(figures, Figure(f"one worker as a share of the {label}", 100 * one["events_per_s"] /
                               result["events_per_s"], "%"))

    for name, label, goal in (("faust", "Faust hopping tables", "vs_faust"), ("quix", "Quix Streams windows",
                                                                               "vs_quix")):
        if name == "quix" and importlib.util.find_spec("quixstreams") is None:
            say("peer quix skipped: quixstreams is not installed (pip install quixstreams)")
            notes.append("The Quix Streams peer was skipped: quixstreams is not installed.")
            continue
        say(f"peer: {label} on the same topic ...")
        result = contenders.peer(broker, name, one["topic"], count, logs, plan.peer_cap_s)
        details[f"peer_{name}"] = result
        figure(figures, Figure(f"peer: {label}", result["events_per_s"], "events/s",
                               note=capped(result, plan.peer_cap_s)))
        figure(figures, Figure(f"peer: {label}, peak RSS", result["peak_rss_mib"] * MB_PER_MIB, "MB"))
        ratio = one["events_per_s"] / result["events_per_s"]
        wanted = TARGETS[goal]
        figure(figures, Figure(f"one worker ÷ {label}", ratio, "x", f"≥ {wanted:g}×" if wanted > 1 else "> 1×",
                               ratio >= wanted if wanted > 1 else ratio > wanted))
    figure(figures, Figure("ccpulse worker peak RSS on the same events", one["peak_rss_mib"][0] * MB_PER_MIB, "MB"))

    sample_speed(speeds, "before the two workers")
    say("end to end, two workers:")
    two = e2e.throughput(broker, data, 2, logs, "two", plan.worker_cap_s)
    details["two_workers"] = two
    figure(figures, Figure("end to end: two workers, events → records", two["events_per_s"], "events/s",
                           note="; ".join(filter(None, ("both on the 2 cores, beside the broker",
                                                        capped(two, plan.worker_cap_s))))))

    sample_speed(speeds, "before freshness")
    say(f"freshness at {plan.fresh_rate:,} events/s for {plan.fresh_s:g} s (after {plan.fresh_warmup_s:g} s warm-up):")
    fresh = e2e.freshness(broker, logs, plan.fresh_rate, plan.fresh_s, plan.fresh_warmup_s, plan.fresh_drain_s,
                          volume=25)
    details["freshness"] = fresh
    goal = f"p99 ≤ {TARGETS['fresh_p99_s']:g} s"
    scraped = f"whole page every {e2e.PROMETHEUS_SCRAPE_S:g} s"
    for where, label, note in (("record", "metric topic", f"{fresh['record_markers']} markers, {scraped}"),
                               ("metrics", "/metrics", f"{fresh['metrics_markers']} markers, {scraped}, marker "
                                                       f"series polled every {e2e.MARKER_POLL_S:g} s")):
        unseen = fresh["unseen_after_drain"][where]
        if unseen:
            note += (f"; {unseen} not shown {plan.fresh_drain_s:g} s after the load stopped, counted as that late: "
                     "a lower bound")
        figure(figures, Figure(f"freshness p50 to the {label}", fresh[f"{where}_p50_s"], "s", note=note))
        p99 = fresh[f"{where}_p99_s"]
        figure(figures, Figure(f"freshness p99 to the {label}", p99, "s", goal, p99 <= TARGETS["fresh_p99_s"], note))
    notes.append(f"Freshness: the producer reached {fresh['achieved_rate']:,.0f} events/s. Records are published in "
                 "rounds about a second apart, so a record's delay includes up to 1 s (0.5 s on average) of waiting "
                 "for the next. "
                 "/metrics delays are the time of the first answer that shows the marker (upper bounds, up to about "
                 f"{e2e.MARKER_POLL_S:g} s late); while the marker series was also polled, the record p99 was "
                 f"{fresh['record_p99_while_scraped_s']:.2f} s. The whole page was scraped {fresh['full_scrapes']} "
                 f"times, as the deployed Prometheus does (every {e2e.PROMETHEUS_SCRAPE_S:g} s), the longest taking "
                 f"{fresh['full_scrape_max_s']:.2f} s; the marker series was asked for alone (`?name[]=`), since "
                 "scraping the whole page that often would put many times Prometheus' load on the worker.")
    notes.append(f"A /metrics page of the one-worker run had {one['metrics_page_lines']:,} lines "
                 f"({one['metrics_page_bytes'] / 1e6:.1f} MB) and took {one['metrics_scrape_s']:.2f} s to fetch; "
                 "the worker renders it in a thread beside its event loop, which runs slower (sharing the GIL) "
                 "for that long.")
    notes.append("Throughput is timed by each group's committed offsets (ccpulse's stage one and the peers "
                 "commit every second), from the first commit to the commit covering every event; for ccpulse "
                 "also until a record carries the newest event time. The Faust peer's `isodates` models parse "
                 "'.175' as 175 microseconds (a Faust quirk; it does not change its cost).")


def profile(broker: Broker, plan: Plan, logs: Path, out: Path, notes: list[str]) -> None:
    """One worker under cProfile over the busy hour at natural volume; the top of the profile to a file.

    Natural volume, because a worker stuck on the larger set ignores SIGTERM and, killed, writes no profile."""
    say("profiling one worker under cProfile (slower than the timed runs) ...")
    data = e2e.busy_hour(plan.hour_s, 1)
    stats_path = logs / "worker.prof"
    e2e.throughput(broker, data, 1, logs, "profile", plan.worker_cap_s,
                   wrapper=(sys.executable, "-m", "cProfile", "-o", str(stats_path)))
    deadline = time.monotonic() + 30
    while not stats_path.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    with (out / "worker-profile.txt").open("w", encoding="utf-8") as fh:
        stats = pstats.Stats(str(stats_path), stream=fh)
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats(60)
    notes.append(f"Worker profile (cProfile, one worker over the same dataset): {out / 'worker-profile.txt'}")
    say(f"profile: {out / 'worker-profile.txt'}")


def sample_speed(speeds: dict[str, float], when: str) -> None:
    """The VM's speed now (benchmarks/speed.py), kept and printed: the figures measured next ran in
    this spell."""
    speeds[when] = loop_rate()
    say(f"the VM's speed {when}: {speeds[when]:.1f} M loops/s")


def capped(result: dict[str, Any], cap_s: float) -> str:
    """A note for a run cut at its cap (empty when it read everything), and for crashed agents."""
    notes = [] if result["complete"] else [f"cut at {cap_s:g} s: rate over {result['timed_events']:,} of "
                                           f"{result['events']:,} events"]
    if result.get("commits_stalled"):
        notes.append("commits stalled")
    if result.get("agent_crashes"):
        notes.append(f"an agent CRASHED: {result['agent_crashes'][0]}")
    return "; ".join(notes)


def figure(figures: list[Figure], item: Figure) -> None:
    """Keep a figure and print it at once."""
    figures.append(item)
    target = "" if item.met is None else f"   target {item.target}: {'met' if item.met else 'NOT met'}"
    say(f"  {item.name}: {item.measured()}{target}")


if __name__ == "__main__":
    sys.exit(main())
