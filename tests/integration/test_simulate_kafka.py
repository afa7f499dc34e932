"""`ccpulse simulate --kafka` against the real broker: every event arrives, keyed by its contact."""

from __future__ import annotations

import uuid

import orjson
import pytest
from helpers import wait_until
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic

from streams import cli
from streams.core.timefmt import parse_rfc3339
from streams.simulate import scenarios
from streams.simulate.generator import SimConfig, generate

START = "2025-03-03T09:00:00Z"
COUNT = 400


def test_simulated_events_reach_the_topic_keyed_by_contact(kafka_bootstrap: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = f"sim{uuid.uuid4().hex[:8]}."
    topic = f"{prefix}events"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        admin.close()
    monkeypatch.setenv("CCPULSE_TOPICS__PREFIX", prefix)

    assert cli.main(["simulate", "-q", "--kafka", "--bootstrap", kafka_bootstrap, "--fast", "--seed", "9",
                     "--start", START, "--count", str(COUNT),
                     "--scenario", "duplicates:share=0.02"]) == 0

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=500, group_id=None)
    received: list[tuple[int, bytes, bytes]] = []
    try:
        def all_read() -> bool:
            received.extend((m.partition, m.key, m.value) for m in consumer)
            return len(received) >= COUNT

        wait_until(all_read, timeout=60, what=f"{COUNT} simulated events on {topic}")
    finally:
        consumer.close()

    expected = list(generate(SimConfig(start_ms=parse_rfc3339(START), seed=9, duration_s=None, count=COUNT,
                                       scenarios=(scenarios.parse("duplicates:share=0.02", 0, ()),))))
    assert len(received) == COUNT
    assert sorted(value for _, _, value in received) == sorted(value for _, value in expected)
    partition_of: dict[bytes, int] = {}
    for partition, key, value in received:
        event = orjson.loads(value)
        assert key == (event.get("ticket_id") if event["type"].startswith("ticket.") else event["contact_id"]).encode()
        assert partition_of.setdefault(key, partition) == partition  # one contact, one partition
    assert len(set(partition_of.values())) > 1
