"""The benchmark's own local stack: a Kafka broker, isolated topic sets, worker processes, loaders.

Everything here runs on 127.0.0.1 and is torn down by its owner (`Broker.stop`, `Proc.stop`).
Each measurement gets its own topic prefix and consumer group, so runs never read each other's
messages; `tests/integration/workers.py` does the same for tests, but it is built on the tests'
helpers (and kafka-python, too slow to pre-load a million events), so the benchmark has its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, TypeVar

from aiokafka import AIOKafkaProducer
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import CoordinatorNotAvailableError
from kafka.structs import OffsetAndMetadata

from streams.streaming.partitioner import partition_of

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
CCPULSE = VENV_BIN / "ccpulse"
T = TypeVar("T")


def say(text: str) -> None:
    """Progress and figures, as they happen (stdout, unbuffered)."""
    print(text, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll until `predicate` returns something truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # the condition may raise until the thing is up
            last = exc
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{what} did not happen within {timeout:g} s" + (f" ({last!r})" if last else ""))
        time.sleep(interval)


def rss_mib(pid: int) -> float:
    """Resident set size of a process (Linux /proc), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Broker:
    """A throwaway single-node Kafka started with deploy/kafka.sh on a free port."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._admin: KafkaAdminClient | None = None

    def start(self) -> str:
        """Start the broker; the script's line saying which Kafka version is ready."""
        return self._script("start", "--port", str(self.port))

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
        self._script("stop")

    def _script(self, action: str, *args: str) -> str:
        proc = subprocess.run([str(REPO / "deploy" / "kafka.sh"), action, *args, "--run-dir", str(self.run_dir)],
                              capture_output=True, text=True, timeout=180, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"deploy/kafka.sh {action} failed:\n{proc.stdout}{proc.stderr}")
        return proc.stdout + proc.stderr

    @property
    def admin(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        return self._admin

    def end_offsets(self, topic: str) -> dict[int, int]:
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        try:
            parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            return {tp.partition: offset for tp, offset in consumer.end_offsets(parts).items()}
        finally:
            consumer.close()

    def commit(self, group: str, topic: str, offsets: dict[int, int]) -> None:
        """Commit offsets for a consumer group, as a member that had read that far would have."""
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False)
        try:
            consumer.commit({TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()})
        finally:
            consumer.close()

    def committed(self, group: str, topic: str) -> int:
        """Sum of a consumer group's committed offsets on a topic (0 before its first commit)."""
        try:
            offsets = self.admin.list_group_offsets(group).get(group, {})
        except CoordinatorNotAvailableError:  # the group's coordinator is still being set up
            return 0
        return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


class TopicSet:
    """One measurement's topics: `<prefix>events`, `facts`, `metrics`, ... created by `ccpulse topics apply`."""

    def __init__(self, broker: Broker, label: str, partitions: int = 12) -> None:
        tag = uuid.uuid4().hex[:6]
        self.broker = broker
        self.prefix = f"bench-{label}-{tag}."
        self.app_id = f"ccpulse-bench-{label}-{tag}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CCPULSE_")}
        env.update({"CCPULSE_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap, "CCPULSE_TOPICS__PREFIX": self.prefix,
                    "CCPULSE_TOPICS__PARTITIONS": str(partitions), "CCPULSE_WORKER__APP_ID": self.app_id,
                    "PYTHONUNBUFFERED": "1"})
        self.env = env
        self.partitions = partitions
        proc = subprocess.run([str(CCPULSE), "topics", "apply"], env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"ccpulse topics apply failed:\n{proc.stderr}")

    def topic(self, base: str) -> str:
        return f"{self.prefix}{base}"


class Proc:
    """A benchmarked process (a worker or a peer): its log, its RSS, and a clean stop."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("ab")
        self.process = subprocess.Popen(list(argv), env=env, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        self.peak_rss = 0.0

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def rss(self) -> float:
        value = rss_mib(self.process.pid)
        self.peak_rss = max(self.peak_rss, value)
        return value

    def check(self) -> None:
        if not self.running:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}\n{self.log_tail()}")

    def stop(self, timeout: float = 45) -> None:
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()

    def crashes(self) -> list[str]:
        """Faust agents that crashed (the process goes on without them), as their log lines say."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [line.strip()[:300] for line in text.splitlines() if "Crashed reason=" in line]

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- last lines of {self.log_path} ---\n" + "\n".join(text.splitlines()[-lines:])


class Worker(Proc):
    """`ccpulse worker` on a topic set, with its own web port and data folder."""

    def __init__(self, topics: TopicSet, name: str, out: Path, wrapper: Sequence[str] = (),
                 loglevel: str = "warning") -> None:
        self.port = free_port()
        datadir = out / f"{name}-data"
        datadir.mkdir(parents=True, exist_ok=True)
        argv = [*wrapper, str(CCPULSE), "worker", "--web-port", str(self.port), "--datadir", str(datadir),
                "--loglevel", loglevel]
        super().__init__(name, argv, dict(topics.env), out / f"{name}.log")

    def metrics(self, *names: str) -> str:
        """The /metrics page, only the named series if any are named."""
        query = "?" + urllib.parse.urlencode([("name[]", name) for name in names]) if names else ""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics{query}", timeout=10) as response:
            return response.read().decode()

    def wait_ready(self, timeout: float = 90) -> None:
        def answers() -> bool:
            self.check()
            return bool(self.metrics())
        wait_for(answers, timeout, f"{self.name}'s /metrics answering", interval=0.3)


_SAMPLE = re.compile(r"^(\w+)(?:\{([^}]*)\})? (\S+)", re.M)


def samples(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of metric `name` whose labels include `labels`, in a /metrics page."""
    total = 0.0
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    for match in _SAMPLE.finditer(text):
        if match.group(1) == name and all(label in (match.group(2) or "") for label in wanted):
            total += float(match.group(3))
    return total


def preload(bootstrap: str, topic: str, partitions: int, events: Iterable[tuple[bytes, bytes]]) -> int:
    """Write `(key, value)` pairs to a topic in per-partition batches; the number written."""
    return asyncio.run(_preload(bootstrap, topic, partitions, events))


async def _preload(bootstrap: str, topic: str, partitions: int, events: Iterable[tuple[bytes, bytes]]) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20,
                                compression_type=None, acks=1)
    await producer.start()
    try:
        batches = {p: producer.create_batch() for p in range(partitions)}
        pending = []
        count = 0
        for key, value in events:
            part = partition_of(key, partitions)
            if batches[part].append(key=key, value=value, timestamp=None) is None:
                batches[part].close()
                pending.append(await producer.send_batch(batches[part], topic, partition=part))
                batches[part] = producer.create_batch()
                batches[part].append(key=key, value=value, timestamp=None)
            count += 1
        for part, batch in batches.items():
            if batch.record_count():
                batch.close()
                pending.append(await producer.send_batch(batch, topic, partition=part))
        await asyncio.gather(*pending)
        return count
    finally:
        await producer.stop()


@dataclasses.dataclass
class Progress:
    """A consumer group's run over a topic: from its first commit to the last event (or the cap)."""

    started: float  # wall time of the first commit seen
    first: int  # events committed then
    ended: float  # wall time the last event's commit was seen (or the cap ran out)
    done: int  # events committed (or processed, see `follow_group`) then
    stalled: bool = False  # the end was seen on the probe while commits stood still
    #: the first commit seen already covered every event, so the run is timed from the processes' start
    from_start: bool = False

    @property
    def rate(self) -> float:
        return (self.done - self.first) / (self.ended - self.started)


def follow_group(broker: Broker, group: str, topic: str, total: int, procs: Sequence[Proc], label: str,
                 cap_s: float, probe: Callable[[], int] | None = None, start_timeout_s: float = 120) -> Progress:
    """Watch a group's committed offsets (every 0.5 s, cheap for the processes) until `total` or `cap_s`.

    Commits can stall while processing goes on (a Faust worker whose producer buffer is full stops
    committing). `probe`, when given, counts the events processed some costlier way (a /metrics
    scrape): it is asked every 2 s once the commits have not moved for 10 s, and at the cap.
    A run whose first commit seen already covers every event (a small topic, a fast process) leaves
    nothing between two commits to time; it is timed from the call (the processes ready), a lower
    bound that includes joining the group, and says so (`from_start`)."""
    launched = time.monotonic()
    launched_at = time.time()
    next_note = launched + 5
    started = None
    first = moved = 0
    last_moved = time.monotonic()
    while True:
        for proc in procs:
            proc.check()
            proc.rss()
        done = broker.committed(group, topic)
        now = time.time()
        if done != moved:
            moved, last_moved = done, time.monotonic()
        stalled = probe is not None and started is not None and time.monotonic() - last_moved >= 10
        if stalled or (probe is not None and started is not None and now - started >= cap_s):
            assert probe is not None
            done = max(done, probe())
        if started is None:
            if done >= total:
                return Progress(launched_at, 0, now, done, stalled, from_start=True)
            if done > 0:
                started, first = now, done
            elif time.monotonic() - launched > start_timeout_s:
                raise RuntimeError(f"{label}: nothing committed within {start_timeout_s:g} s")
        elif done >= total or now - started >= cap_s:
            return Progress(started, first, now, done, stalled)
        if time.monotonic() >= next_note:
            say(f"  ... {label}: {done:,} / {total:,} events " + ("processed (commits stalled)" if stalled
                                                                   else "committed"))
            next_note += 5
        time.sleep(2.0 if stalled else 0.5)
