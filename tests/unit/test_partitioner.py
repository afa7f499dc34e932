"""The worker producer's partitioner places every key where Kafka's default partitioner does."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner

from streams.streaming import partitioner
from streams.streaming.partitioner import KeptHashPartitioner, partition_of


def test_keys_go_where_the_default_partitioner_puts_them_also_when_asked_again() -> None:
    generator = random.Random(5)
    keys = [f"RU-{generator.randrange(10**6)}|voice|15m".encode() for _ in range(500)]
    keys += [bytes(generator.randrange(256) for _ in range(generator.randrange(1, 40))) for _ in range(500)]
    kept, default = KeptHashPartitioner(), DefaultPartitioner()
    for partitions in (1, 3, 12):
        every = list(range(partitions))
        for key in keys + keys:
            assert kept(key, every, every) == default(key, every, every) == partition_of(key, partitions), key


def test_a_full_table_of_hashes_starts_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(partitioner, "KEPT_HASHES", 4)
    kept, default = KeptHashPartitioner(), DefaultPartitioner()
    for number in range(10):
        key = f"key-{number}".encode()
        assert kept(key, [0, 1, 2], [0, 1, 2]) == default(key, [0, 1, 2], [0, 1, 2])
    assert len(kept.hashes) <= 4


def test_a_message_without_a_key_goes_to_an_available_partition() -> None:
    kept = KeptHashPartitioner()
    assert {kept(None, [0, 1, 2], [2]) for _ in range(20)} == {2}
    assert kept(None, [0, 1, 2], []) in {0, 1, 2}
