"""Peer (a): the rolling 15-minute wait average and service level, written the way Faust's docs teach.

Models for the events, a table pairing `queue.entered` with `queue.left` on the contact-keyed
stream, completed visits re-keyed by `region|channel` through a topic, and hopping windowed tables
(15 min, 1 min step) over event time (`relative_to_field`); a 1 s timer publishes changed values.
Windows expire 30 h after their end by the wall clock, so replayed history is not dropped on
arrival (research/faust-streaming.md, 1.2).

Run: BENCH_BOOTSTRAP=... BENCH_TOPIC=... BENCH_GROUP=... BENCH_DATADIR=... python faust_peer.py worker
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import faust

sys.path.insert(0, str(Path(__file__).resolve().parent))
from job import STEP_MS, WINDOW_MS, summary, visit_counts

PARTITIONS = 12
GROUP = os.environ["BENCH_GROUP"]


class Event(faust.Record, isodates=True, serializer="json"):
    type: str
    ts: datetime
    region: str
    channel: str
    contact_id: str = ""
    visit: int = 1
    reason: str | None = None
    wait_s: float | None = None


class Visit(faust.Record, isodates=True, serializer="json"):
    region: str
    channel: str
    ts: datetime
    answered: int
    wait_sum: float
    within: int
    denominator: int


app = faust.App(GROUP, broker=f"kafka://{os.environ['BENCH_BOOTSTRAP']}", store="rocksdb://",
                datadir=os.environ["BENCH_DATADIR"], topic_partitions=PARTITIONS, web_enabled=False,
                broker_commit_interval=1.0, consumer_auto_offset_reset="earliest")
events = app.topic(os.environ["BENCH_TOPIC"], key_type=bytes, value_type=Event)
visits = app.topic(f"{GROUP}-visits", key_type=str, value_type=Visit, partitions=PARTITIONS)
output = app.topic(f"{GROUP}-out", key_type=str, value_serializer="json", partitions=PARTITIONS)

pending = app.Table("pending", default=None, partitions=PARTITIONS)  # contact|visit -> entry ts or early left
WINDOW = {"size": timedelta(milliseconds=WINDOW_MS), "step": timedelta(milliseconds=STEP_MS),
          "expires": timedelta(hours=30)}
answered = app.Table("answered", default=int).hopping(**WINDOW).relative_to_field(Visit.ts)
wait_sum = app.Table("wait_sum", default=float).hopping(**WINDOW).relative_to_field(Visit.ts)
within = app.Table("within_sla", default=int).hopping(**WINDOW).relative_to_field(Visit.ts)
denominator = app.Table("sl_denominator", default=int).hopping(**WINDOW).relative_to_field(Visit.ts)
latest: dict[str, dict[str, float | None]] = {}


def completed(region: str, channel: str, ts: datetime, reason: str, wait_s: float) -> Visit:
    counts = visit_counts(channel, reason, wait_s)
    return Visit(region=region, channel=channel, ts=ts, answered=counts[0], wait_sum=counts[1],
                 within=counts[2], denominator=counts[3])


@app.agent(events)
async def pair(stream: faust.StreamT[Event]) -> None:
    """Pair each queue visit's entry and exit (either order) and send the completed visit on."""
    async for event in stream:
        if event.type not in ("queue.entered", "queue.left"):
            continue
        key = f"{event.contact_id}|{event.visit}"
        seen = pending.get(key)
        if event.type == "queue.entered":
            if seen is None:
                pending[key] = event.ts.timestamp()
                continue
            del pending[key]  # its queue.left came first
            left_at = datetime.fromtimestamp(seen["ts"], timezone.utc)
            visit = completed(event.region, event.channel, left_at, seen["reason"], seen["ts"] - event.ts.timestamp())
        elif event.wait_s is not None or isinstance(seen, float):
            if seen is not None:
                del pending[key]
            wait = event.wait_s if event.wait_s is not None else event.ts.timestamp() - seen
            visit = completed(event.region, event.channel, event.ts, event.reason or "", wait)
        else:
            pending[key] = {"ts": event.ts.timestamp(), "reason": event.reason}
            continue
        await visits.send(key=f"{visit.region}|{visit.channel}", value=visit)


@app.agent(visits)
async def windows(stream: faust.StreamT[Visit]) -> None:
    """Count visits into the hopping windows of their event time; keep the current figures."""
    async for visit in stream:
        key = f"{visit.region}|{visit.channel}"
        if visit.answered:
            answered[key] += visit.answered
            wait_sum[key] += visit.wait_sum
        if visit.within:
            within[key] += visit.within
        if visit.denominator:
            denominator[key] += visit.denominator
        latest[key] = summary(answered[key].value(), wait_sum[key].value(), within[key].value(),
                              denominator[key].value())


@app.timer(interval=1.0)
async def publish() -> None:
    """Publish what changed in the last second, as ccpulse does."""
    changed = list(latest.items())
    latest.clear()
    for key, figures in changed:
        await output.send(key=key, value=figures)


if __name__ == "__main__":
    app.main()
