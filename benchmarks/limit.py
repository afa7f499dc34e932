"""The limit: how fast one Python consumer (aiokafka + orjson, nothing else) reads and decodes a topic.

Run as its own process by run.py, so nothing else shares its interpreter:
python benchmarks/limit.py BOOTSTRAP TOPIC COUNT  -> one JSON line {events, seconds, events_per_s}
Timed from the first batch (1,000 events at most) to the last event, so connecting is not counted.
"""

from __future__ import annotations

import asyncio
import sys
import time

import orjson
from aiokafka import AIOKafkaConsumer


async def consume(bootstrap: str, topic: str, count: int) -> dict[str, float]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        loads = orjson.loads
        read = first = 0
        started = 0.0
        while read < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=1_000)
            for messages in batches.values():
                for message in messages:
                    loads(message.value)
                read += len(messages)
            if not started and read:
                started, first = time.perf_counter(), read
        elapsed = time.perf_counter() - started
        if read == first:
            raise SystemExit(f"{topic}: all {read} events came in the first batch; too few to time")
        return {"events": read - first, "seconds": elapsed, "events_per_s": (read - first) / elapsed}
    finally:
        await consumer.stop()


def main() -> int:
    bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(orjson.dumps(asyncio.run(consume(bootstrap, topic, count))).decode(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
