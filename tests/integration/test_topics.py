"""`ccpulse topics apply` against a real broker: creates the spec's topics, is idempotent,
raises partitions (never lowers them), and fails fast with one line when Kafka is unreachable."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import free_port
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

BASES = ("events", "facts", "metrics", "alerts", "events.dlq")


def ccpulse(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, check=False)


def lines_by_topic(stdout: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in stdout.splitlines())


@pytest.fixture
def admin(kafka_bootstrap: str) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    yield client
    client.close()


def partitions(admin: KafkaAdminClient, names: list[str]) -> dict[str, int]:
    return {t["name"]: len(t["partitions"]) for t in admin.describe_topics(names)}


def test_apply_creates_updates_and_never_decreases(kafka_bootstrap: str, admin: KafkaAdminClient,
                                                   tmp_path: Path) -> None:
    config = tmp_path / "ccpulse.toml"
    config.write_text('[topics]\nprefix = "t1."\npartitions = 2\nfacts_retention_ms = 300000000\n')
    names = [f"t1.{base}" for base in BASES]

    first = ccpulse("topics", "apply", "--config", str(config), "--bootstrap", kafka_bootstrap)
    assert first.returncode == 0, first.stderr
    assert list(lines_by_topic(first.stdout)) == names
    assert all(status.startswith("created") for status in lines_by_topic(first.stdout).values())
    assert partitions(admin, names) == dict.fromkeys(names, 2)
    configs = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name, configs={"cleanup.policy": None, "retention.ms": None})
         for name in names], config_filter="all")["topic"]
    assert configs["t1.metrics"]["cleanup.policy"]["value"] == "compact"
    assert configs["t1.events"]["cleanup.policy"]["value"] == "delete"
    assert configs["t1.facts"]["retention.ms"]["value"] == "300000000"
    assert configs["t1.events"]["retention.ms"]["value"] == str(31 * 24 * 3600 * 1000)

    again = ccpulse("topics", "apply", "--config", str(config), "--bootstrap", kafka_bootstrap)
    assert again.returncode == 0, again.stderr
    assert lines_by_topic(again.stdout) == dict.fromkeys(names, "unchanged")

    wider = ccpulse("topics", "apply", "--config", str(config), "--bootstrap", kafka_bootstrap,
                    "--partitions", "3", env={"CCPULSE_TOPICS__FACTS_RETENTION_MS": "400000000"})
    assert wider.returncode == 0, wider.stderr
    status = lines_by_topic(wider.stdout)
    assert status["t1.events"] == "updated (partitions 2 -> 3)"
    assert status["t1.facts"] == "updated (partitions 2 -> 3; retention.ms 300000000 -> 400000000)"
    assert partitions(admin, names) == dict.fromkeys(names, 3)

    narrower = ccpulse("topics", "apply", "--config", str(config), "--bootstrap", kafka_bootstrap,
                       "--partitions", "1")
    assert narrower.returncode == 0, narrower.stderr
    assert all("never decreased" in line for line in lines_by_topic(narrower.stdout).values())
    assert partitions(admin, names) == dict.fromkeys(names, 3)


def test_unreachable_broker_fails_fast_with_one_line() -> None:
    started = time.monotonic()
    result = ccpulse("topics", "apply", "--bootstrap", f"127.0.0.1:{free_port()}",
                     env={"CCPULSE_KAFKA__REQUEST_TIMEOUT_S": "3"})
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert "cannot reach Kafka at 127.0.0.1:" in result.stderr
    assert elapsed < 3 + 5, f"took {elapsed:.1f} s"


def test_bad_broker_address_names_the_option() -> None:
    result = ccpulse("topics", "apply", "--bootstrap", "localhost")
    assert result.returncode != 0
    assert result.stderr.strip() == ("ccpulse topics: error: --bootstrap: invalid broker address 'localhost' "
                                     "(expected HOST:PORT)")
