"""The others on the same pre-loaded events topic: the raw consume limit, Faust's own floor (an
agent doing nothing, or one table write, per event) and the two peer apps.

A peer's progress is its consumer group's committed offsets on the events topic (both peers
commit every second), sampled every 0.5 s: timed from the first commit to the commit of the
last event, or to `cap_s` if it is slower than that (then the rate is over what it had read).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from stack import REPO, Broker, Proc, follow_group

PEERS = {"faust": ["faust_peer.py", "worker", "--loglevel", "warn"], "quix": ["quix_peer.py"],
         "faust-noop": ["faust_floor.py", "noop", "worker", "--loglevel", "warn"],
         "faust-table": ["faust_floor.py", "table", "worker", "--loglevel", "warn"]}


def raw_limit(broker: Broker, topic: str, count: int) -> dict[str, Any]:
    """events/s of benchmarks/limit.py, run as its own process."""
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "limit.py"), broker.bootstrap, topic,
                           str(count)], capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmarks/limit.py failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peer(broker: Broker, name: str, topic: str, count: int, out: Path, cap_s: float) -> dict[str, Any]:
    """Run one peer app over the events topic; its sustained events/s and peak RSS."""
    group = f"bench-peer-{name}-{uuid.uuid4().hex[:6]}"
    datadir = out / f"peer-{name}-data"
    datadir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, BENCH_BOOTSTRAP=broker.bootstrap, BENCH_TOPIC=topic, BENCH_GROUP=group,
               BENCH_DATADIR=str(datadir), PYTHONUNBUFFERED="1")
    script, *args = PEERS[name]
    proc = Proc(f"peer-{name}", [sys.executable, str(REPO / "benchmarks" / "peers" / script), *args], env,
                out / f"peer-{name}.log")
    try:
        progress = follow_group(broker, group, topic, count, [proc], f"peer {name}", cap_s)
        return {"events": count, "timed_events": progress.done - progress.first,
                "seconds": progress.ended - progress.started, "events_per_s": progress.rate,
                "complete": progress.done >= count, "timed_from_start": progress.from_start,
                "peak_rss_mib": proc.peak_rss, "rss_mib": proc.rss()}
    finally:
        proc.stop()
