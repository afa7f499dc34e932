"""`ccpulse replay` over a simulated day of every region, as a user runs it: the command, a file of
half a million events with malformed and duplicated ones among them, progress while it works, and a
summary whose counts match what the simulator injected."""

from __future__ import annotations

import collections
import re
import subprocess
from pathlib import Path

import orjson
import pytest
from helpers import CCPULSE

from streams.core.timefmt import parse_rfc3339
from streams.regions import catalogue
from streams.simulate import scenarios
from streams.simulate.generator import SimConfig, Simulation
from streams.simulate.malformed import REASONS

START = parse_rfc3339("2025-11-24T00:00:00Z")  # a Monday
SUMMARY = re.compile(r"replay: ([\d,]+) lines in ([\d.]+) s; ([\d,]+) accepted, ([\d,]+) duplicates, "
                     r"([\d,]+) rejected, 0 after as_of; as_of \S+; ([\d,]+) records")
PROGRESS = re.compile(r"replay: (read [\d,]+ lines \([\d,]+/s\)|processed [\d,]+ of [\d,]+ events in time order)")


def count(text: str) -> int:
    return int(text.replace(",", ""))


def event_id(value: bytes) -> str | None:
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return body.get("event_id") if isinstance(body, dict) else None


@pytest.mark.timeout(600)
def test_a_day_of_every_region_replays_with_progress_and_counts_every_rejection(tmp_path: Path) -> None:
    every_region = tuple(catalogue())
    injected = [scenarios.parse(text, START, every_region)
                for text in ("malformed:share=0.002", "duplicates:share=0.01")]
    sim = Simulation(SimConfig(start_ms=START, seed=23, duration_s=86_400.0, scenarios=injected))
    day, dlq = tmp_path / "day.jsonl", tmp_path / "dlq.jsonl"
    ids: collections.Counter[str | None] = collections.Counter()
    lines = 0
    with day.open("wb") as fh:
        for _, _, value in sim:
            fh.write(value + b"\n")
            ids[event_id(value)] += 1
            lines += 1
    assert lines > 400_000 and sim._malformed is not None

    proc = subprocess.run([str(CCPULSE), "replay", str(day), "--dlq", str(dlq)], capture_output=True,
                          timeout=540, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    err = proc.stderr.decode().splitlines()

    summary = [SUMMARY.fullmatch(line) for line in err if line.startswith("replay: ") and " lines in " in line]
    assert len(summary) == 1 and summary[0], err[-10:]
    read, accepted, duplicates, rejected, records = (count(summary[0][group]) for group in (1, 3, 4, 5, 6))
    elapsed = float(summary[0][2])
    assert read == lines == accepted + duplicates + rejected
    # every event id seen more than once is a duplicate but its first; the injected invalid events'
    # ids are new, or missing, or empty (one of the invalid fields)
    assert duplicates == sum(n - 1 for ident, n in ids.items() if ident)
    expected = collections.Counter()
    for kind, made in sim._malformed.counts.items():
        expected[REASONS[kind]] += made
    by_reason = dict(re.fullmatch(r"replay: rejected (\w+): ([\d,]+)", line).groups()  # type: ignore[union-attr]
                     for line in err if line.startswith("replay: rejected "))
    assert {reason: count(n) for reason, n in by_reason.items()} == +expected
    assert rejected == sum(expected.values())
    letters = collections.Counter(orjson.loads(line)["reason"] for line in dlq.read_bytes().splitlines())
    assert letters == +expected

    progress = [line for line in err if PROGRESS.fullmatch(line)]
    unexpected = [line for line in err if not (PROGRESS.fullmatch(line) or line.startswith("replay: rejected ")
                                                or SUMMARY.fullmatch(line))]
    assert not unexpected, unexpected
    # a line every 2 s at the most, checked every 4,096 lines read and every 65,536 events processed
    assert progress or elapsed < 3, f"{elapsed} s without a progress line"

    out = orjson.loads(proc.stdout)
    assert len(out) == records > 0
    assert {record["region"] for record in out} >= set(every_region)
