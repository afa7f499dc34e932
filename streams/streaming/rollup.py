"""The country rollup (`region = ALL`): one owner merges every region's minute buckets.

Regional partitions publish the full content of each minute bucket that changed, and the live
state of each (region, channel) that changed, to a one-partition topic. Messages are upserts, so
a message read twice changes nothing, and the topic (compacted) is this stage's changelog: the
owner rebuilds by reading it from the start. Records are not a sum of region records: `today` of
`region = ALL` starts at Moscow midnight while each region's starts at its own.
"""

from __future__ import annotations

from typing import Any

import orjson

from streams.config import Settings
from streams.core.aggregator import LIVE, Aggregator
from streams.core.buckets import INDEX, WAIT_BINS, Bucket, add_scaled
from streams.core.records import ALL, build_records
from streams.core.timefmt import DAY_MS, MINUTE_MS
from streams.encoding import dumps_sized

_WAIT_MAX = INDEX["wait_max_us"]


def encode_bucket(region: str, channel: str, minute: int, bucket: Bucket, as_of: int) -> tuple[bytes, bytes]:
    key = f"{region}|{channel}|{minute}".encode()
    return key, dumps_sized({"w": as_of, "r": region, "c": channel, "m": minute, "b": bucket},
                            option=orjson.OPT_NON_STR_KEYS)


def encode_live(region: str, channel: str, waiting: list[int], tickets: list[int], as_of: int) -> tuple[bytes, bytes]:
    key = f"{region}|{channel}|live".encode()
    return key, dumps_sized({"w": as_of, "r": region, "c": channel, "live": [waiting, tickets]})


def encode_rollup_tick(as_of: int) -> tuple[bytes, bytes]:
    return b"tick", orjson.dumps({"w": as_of})


class CountryRollup:
    def __init__(self, settings: Settings) -> None:
        pipeline = settings.pipeline
        self.channels = settings.channels
        self.aggregator = Aggregator(settings.channels, pipeline.short_abandon_s, pipeline.retention_horizon_s * 1000,
                                     pipeline.ticket_retention_days * DAY_MS)
        #: (channel, minute) -> region -> the region's latest bucket content
        self.parts: dict[tuple[str, int], dict[str, Bucket]] = {}
        #: (region, channel) -> keys of its entries in the country pair's live dicts
        self.live_keys: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
        self.next_offset = 0
        self.as_of: int | None = None
        self.published: dict[str, dict[str, Any]] = {}
        #: the partition has once reached its end since it was assigned (see RegionalStage.collect)
        self.rebuilt = False

    def handle(self, raw: bytes, offset: int) -> None:
        if offset < self.next_offset:
            return
        self.next_offset = offset + 1
        message = orjson.loads(raw)
        if "b" in message:
            bucket = message["b"]
            bucket[WAIT_BINS] = {int(index): count for index, count in bucket[WAIT_BINS].items()}
            self._upsert_bucket(message["r"], message["c"], message["m"], bucket)
        elif "live" in message:
            waiting, tickets = message["live"]
            self._upsert_live(message["r"], message["c"], waiting, tickets)
        self._advance(message["w"])

    def _upsert_bucket(self, region: str, channel: str, minute: int, bucket: Bucket) -> None:
        slot = self.parts.setdefault((channel, minute), {})
        old = slot.get(region)
        slot[region] = bucket
        target = self.aggregator.pair(ALL, channel).bucket(minute * MINUTE_MS)
        add_scaled(target, bucket, 1)
        if old is not None:
            add_scaled(target, old, -1)
        target[_WAIT_MAX] = max(part[_WAIT_MAX] for part in slot.values())

    def _upsert_live(self, region: str, channel: str, waiting: list[int], tickets: list[int]) -> None:
        pair = self.aggregator.pair(ALL, channel)
        old_waiting, old_tickets = self.live_keys.get((region, channel), ([], []))
        for key in old_waiting:
            pair.waiting.pop(key, None)
        for key in old_tickets:
            pair.tickets_open.pop(key, None)
        waiting_keys = [f"{region}#{i}" for i in range(len(waiting))]
        ticket_keys = [f"{region}#{i}" for i in range(len(tickets))]
        pair.waiting.update(zip(waiting_keys, waiting, strict=True))
        pair.tickets_open.update(zip(ticket_keys, tickets, strict=True))
        self.live_keys[(region, channel)] = (waiting_keys, ticket_keys)

    def _advance(self, as_of: int) -> None:
        previous = self.as_of
        if previous is not None and as_of <= previous:
            return
        self.as_of = as_of
        if previous is None or as_of // MINUTE_MS != previous // MINUTE_MS:
            self.aggregator.release(as_of)
            first_minute = (as_of - self.aggregator.horizon_ms) // MINUTE_MS
            for key in [key for key in self.parts if key[1] < first_minute]:
                del self.parts[key]

    def collect(self) -> list[dict[str, Any]]:
        """The `region = ALL` records that changed since they were last published."""
        if self.as_of is None:
            return []
        changed = []
        for record in build_records(self.aggregator, self.as_of, self.channels):
            key = f"{record['region']}|{record['channel']}|{record['window']}"
            if self.published.get(key) != record:
                self.published[key] = record
                changed.append(record)
        return changed


def rollup_messages(aggregator: Aggregator, as_of: int) -> list[tuple[bytes, bytes]]:
    """Upserts for everything that changed in a regional aggregator since the last call."""
    messages = []
    for region, channel, minute in aggregator.take_changes():
        pair = aggregator.pairs.get((region, channel))
        if pair is None:
            continue
        if minute == LIVE:
            messages.append(encode_live(region, channel, sorted(pair.waiting.values()),
                                        sorted(pair.tickets_open.values()), as_of))
        elif minute in pair.minutes:
            messages.append(encode_bucket(region, channel, minute, pair.minutes[minute], as_of))
    return messages
