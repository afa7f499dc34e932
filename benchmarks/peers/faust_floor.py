"""Not a peer but a floor: what Faust itself costs per event, on the same topic and the same machine.

`noop` iterates the events and does nothing with them; `table` also writes each event's raw bytes
to a changelogged RocksDB table under its key, the least a stage keeping state per contact must
do. No pipeline that runs one Faust agent iteration (and one table write) per event can be faster
than these, so they tell how much of a worker's time is its own work and how much is Faust's.
Settings are the worker's (raw serializers, RocksDB, the same producer linger); commits every
second, as the peers, so the harness can time it by its committed offsets.

Run: BENCH_BOOTSTRAP=... BENCH_TOPIC=... BENCH_GROUP=... BENCH_DATADIR=... python faust_floor.py MODE worker
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import faust

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from streams.streaming.intake import PRODUCER_LINGER_MS

MODES = ("noop", "table")
PARTITIONS = 12

if len(sys.argv) < 2 or sys.argv[1] not in MODES:
    sys.exit(f"usage: faust_floor.py {{{','.join(MODES)}}} worker [faust worker options]")
MODE = sys.argv.pop(1)

app = faust.App(os.environ["BENCH_GROUP"], broker=f"kafka://{os.environ['BENCH_BOOTSTRAP']}", store="rocksdb://",
                datadir=os.environ["BENCH_DATADIR"], topic_partitions=PARTITIONS, web_enabled=False,
                broker_commit_interval=1.0, consumer_auto_offset_reset="earliest", key_serializer="raw",
                value_serializer="raw", producer_linger_ms=PRODUCER_LINGER_MS)
events = app.topic(os.environ["BENCH_TOPIC"])

if MODE == "noop":
    @app.agent(events)
    async def iterate(stream: faust.StreamT) -> None:
        async for _ in stream.events():
            pass
else:
    latest = app.Table("latest", default=None, partitions=PARTITIONS)

    @app.agent(events)
    async def keep(stream: faust.StreamT) -> None:
        async for event in stream.events():
            latest[event.key] = event.value

if __name__ == "__main__":
    app.main()
