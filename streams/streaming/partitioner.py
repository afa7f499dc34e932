"""Kafka's default partitioner for the worker's producer, with each key's hash kept.

aiokafka's default partitioner hashes every key with a pure-Python murmur2 (~9 µs a key on this
project's test machine), and a publishing round sends thousands of records under the same few
thousand keys every second. The partition is the same as the Java client's and aiokafka's."""

from __future__ import annotations

import random

from aiokafka.partitioner import murmur2

#: hashes kept at most; the keys the worker's producer sends are records' and alerts' (thousands)
KEPT_HASHES = 1 << 16


def key_hash(key: bytes) -> int:
    """The hash Kafka's default partitioner places a key by: murmur2, made positive (Java client)."""
    return murmur2(key) & 0x7FFFFFFF


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a key among `partitions`."""
    return key_hash(key) % partitions


class KeptHashPartitioner:
    """murmur2 of the key over the topic's partitions, as aiokafka's `DefaultPartitioner`."""

    def __init__(self) -> None:
        #: key -> its murmur2 hash, as the partition is taken from it
        self.hashes: dict[bytes, int] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        hashed = self.hashes.get(key)
        if hashed is None:
            if len(self.hashes) >= KEPT_HASHES:
                self.hashes.clear()
            hashed = self.hashes[key] = key_hash(key)
        return all_partitions[hashed % len(all_partitions)]
