"""Streaming workers as real subprocesses, and the isolated topics they run on, for integration tests.

A `Pipeline` is one test's private slice of the shared broker: its own topic prefix and app id
(consumer group and changelog prefix), the topics created by `ccpulse topics apply`, and the
`ccpulse worker` processes started on it. Each worker has its own web port, data folder and log
file. `Pipeline.close` kills whatever still runs, so a failing test never leaves a worker behind.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import orjson
from helpers import CCPULSE, REPO, free_port, wait_until
from kafka import KafkaConsumer, KafkaProducer

READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 45


@dataclasses.dataclass
class Worker:
    """One `ccpulse worker` process; `start` may be called again after `stop` or `kill`."""

    name: str
    env: dict[str, str]
    datadir: Path
    log_path: Path
    port: int = dataclasses.field(default_factory=free_port)
    command: tuple[str, ...] = (str(CCPULSE),)
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> Worker:
        """Start the process and return once its /metrics answers."""
        assert not self.running, f"{self.name} is already running"
        self._log = self.log_path.open("ab")
        self._log.write(f"----- start {self.name} -----\n".encode())
        self._log.flush()
        self.process = subprocess.Popen(
            [*self.command, "worker", "--web-port", str(self.port), "--datadir", str(self.datadir),
             "--loglevel", "info"],
            env=self.env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO)
        wait_until(self._answers_or_exited, READY_TIMEOUT_S, f"{self.name}'s /metrics answering", interval=0.3)
        if not self.running:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}\n{self.log_tail()}")
        return self

    def metrics(self, *names: str) -> str:
        """The text of /metrics, only the named series if any are named (raises if the worker does not answer)."""
        query = "?" + urllib.parse.urlencode([("name[]", name) for name in names]) if names else ""
        with urllib.request.urlopen(f"http://{self.address}/metrics{query}", timeout=5) as response:
            return response.read().decode()

    def stop(self) -> int:
        """SIGTERM, then wait for the process to exit; its exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not stop within {STOP_TIMEOUT_S} s of SIGTERM\n"
                                 f"{self.log_tail()}") from None
        self._close_log()
        return code

    def kill(self) -> None:
        """SIGKILL: the crash of the crash test, and the last resort of cleanup."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self._close_log()

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- last lines of {self.log_path} ---\n" + "\n".join(text.splitlines()[-lines:])

    def _answers_or_exited(self) -> bool:
        if self.running:
            self.metrics()
        return True

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class TopicReader:
    """Reads a topic from its beginning, a little more on each `poll`, keeping every message."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                      auto_offset_reset="earliest", enable_auto_commit=False)
        self.messages: list[tuple[bytes | None, bytes]] = []
        #: the header names of each message, in the order of `messages`
        self.header_names: list[set[str]] = []
        #: key -> the Kafka timestamps of its messages, in the order of its partition
        self.stamps: dict[bytes | None, list[int]] = {}

    def poll(self) -> list[tuple[bytes | None, bytes]]:
        """Everything read so far (after fetching what arrived since the last call)."""
        for batch in self.consumer.poll(timeout_ms=300, max_records=100_000).values():
            for message in batch:
                self.messages.append((message.key, message.value))
                self.header_names.append({name for name, _ in message.headers or ()})
                self.stamps.setdefault(message.key, []).append(message.timestamp)
        return self.messages

    def values(self) -> list[dict[str, Any]]:
        """The JSON values read so far, in the order of each partition."""
        return [orjson.loads(value) for _, value in self.poll()]

    def latest(self) -> dict[str, dict[str, Any]]:
        """The last value per key: what the compacted topic converges to."""
        return {key.decode(): orjson.loads(value) for key, value in self.poll() if key is not None}

    def close(self) -> None:
        self.consumer.close()


class Pipeline:
    """One test's own topics (unique prefix) and workers (unique app id) on the shared broker."""

    def __init__(self, root: Path, bootstrap: str, partitions: int) -> None:
        self.root = root
        self.bootstrap = bootstrap
        tag = uuid.uuid4().hex[:8]
        self.prefix = f"t{tag}."
        env = {name: value for name, value in os.environ.items() if not name.startswith("CCPULSE_")}
        env.update({
            "CCPULSE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "CCPULSE_TOPICS__PREFIX": self.prefix,
            "CCPULSE_TOPICS__PARTITIONS": str(partitions),
            "CCPULSE_WORKER__APP_ID": f"ccpulse-test-{tag}",
            "PYTHONUNBUFFERED": "1",
        })
        self.env = env
        self.workers: list[Worker] = []
        self.readers: list[TopicReader] = []
        self.producer: KafkaProducer | None = None
        self.ccpulse("topics", "apply")

    def ccpulse(self, *args: str) -> str:
        """Run a `ccpulse` command with this pipeline's configuration; its standard output."""
        proc = subprocess.run([str(CCPULSE), *args], env=self.env, capture_output=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise AssertionError(f"ccpulse {' '.join(args)} exited {proc.returncode}:\n{proc.stderr.decode()}")
        return proc.stdout.decode()

    def topic(self, base: str) -> str:
        return f"{self.prefix}{base}"

    def worker(self, name: str, command: tuple[str, ...] = (str(CCPULSE),)) -> Worker:
        """A new worker (not started yet) with its own port, data folder and log file."""
        datadir = self.root / f"{name}-data"
        datadir.mkdir(parents=True, exist_ok=True)
        worker = Worker(name, dict(self.env), datadir, self.root / f"{name}.log", command=command)
        self.workers.append(worker)
        return worker

    def send(self, events: Iterable[tuple[bytes, bytes]]) -> None:
        """Produce `(key, value)` pairs to the events topic, in this order, and wait until written."""
        self.send_to(self.topic("events"), events)

    def send_to(self, topic: str, events: Iterable[tuple[bytes, bytes]]) -> None:
        """Produce `(key, value)` pairs to a topic, in this order, and wait until written."""
        if self.producer is None:
            self.producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5)
        for key, value in events:
            self.producer.send(topic, key=key, value=value)
        self.producer.flush(60)

    def reader(self, base: str) -> TopicReader:
        reader = TopicReader(self.bootstrap, self.topic(base))
        self.readers.append(reader)
        return reader

    def logs(self) -> str:
        """The tails of every worker's log, for failure messages."""
        return "\n".join(worker.log_tail() for worker in self.workers)

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()
        for reader in self.readers:
            reader.close()
        if self.producer is not None:
            self.producer.close(10)
