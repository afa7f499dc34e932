"""The benchmark command runs end to end (`--quick`) and reports every figure: not timings, only that it works.

It starts and stops its own Kafka through deploy/kafka.sh, so it needs the same machine setup as
the other integration tests, but none of their fixtures.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, require_tool

FIGURES = {
    "core: JSON line → updated state, one core",
    "core, cold: the process's first pass, as one `ccpulse replay` run",
    "stage one rebuild after an assignment: decode + track, no facts",
    "core: peak state memory, 0.5 simulated h of all regions",
    "core: instructions per event (valgrind)",
    "stage one (a worker's intake): instructions per event (valgrind)",
    "stage two (a worker's regional counting): instructions per event (valgrind)",
    "end to end: one worker, events → records",
    "worker RSS after the simulated hour",
    "limit: raw consumer (aiokafka + orjson)",
    "one worker as a share of the limit",
    "limit: Faust agent doing nothing per event",
    "one worker as a share of the Faust agent doing nothing per event",
    "limit: Faust agent writing one table key per event",
    "one worker as a share of the Faust agent writing one table key per event",
    "peer: Faust hopping tables",
    "peer: Faust hopping tables, peak RSS",
    "one worker ÷ Faust hopping tables",
    "peer: Quix Streams windows",
    "peer: Quix Streams windows, peak RSS",
    "one worker ÷ Quix Streams windows",
    "ccpulse worker peak RSS on the same events",
    "end to end: two workers, events → records",
    "freshness p50 to the metric topic",
    "freshness p99 to the metric topic",
    "freshness p50 to the /metrics",
    "freshness p99 to the /metrics",
    "the VM's speed: a fixed pure-Python loop",
}


@pytest.mark.timeout(900)
def test_quick_benchmark_writes_every_figure(tmp_path: Path) -> None:
    require_tool("valgrind")  # for the instruction counts (deploy/test.sh installs it)
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=840, check=False, cwd=REPO)
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"

    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    figures = {figure["name"]: figure for figure in report["figures"]}
    assert set(figures) == FIGURES
    for name, figure in figures.items():
        assert isinstance(figure["value"], (int, float)) and math.isfinite(figure["value"]), name
        assert figure["met"] in (True, False, None), name
    assert report["machine"]["cores"] >= 1 and report["machine"]["cpu"]
    assert report["machine"]["versions"]["faust-streaming"] != "not installed"

    table = [line for line in (tmp_path / "report.md").read_text(encoding="utf-8").splitlines()
             if line.startswith("| ") and not line.startswith("| figure")]
    assert len(table) == len(FIGURES)
    for name in FIGURES:
        assert any(line.startswith(f"| {name}") for line in table), name
    for name in FIGURES:  # printed as it went, not only written at the end
        assert f"  {name}: " in proc.stdout, name


@pytest.mark.timeout(300)
def test_cold_start_benchmark_reads_every_written_event_again(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "cold_start.py"), "--days", "0.05",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=280, check=False, cwd=REPO)
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"

    result = json.loads((tmp_path / "cold_start.json").read_text(encoding="utf-8"))
    written = int(proc.stdout.split(" events written")[0].rsplit("\n", 1)[-1].replace(",", ""))
    assert result["events"] == written > 1000  # the script itself fails when the worker read another count
    assert result["rebuild_s"] >= 0 and result["start_to_rebuilt_s"] > 0 and result["rss_mib"] > 0
    assert f"cold start: {written:,} events" in proc.stdout
