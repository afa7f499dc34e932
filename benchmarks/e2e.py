"""End to end with the real broker: worker throughput, freshness at a steady load, worker memory.

Throughput: N events are written to `<prefix>events` first, then the workers start. The clock
runs from the group's first commit (so start-up and partition assignment are not counted) to
the later of: the commit that covers every event, and the first record on `<prefix>metrics`
whose `as_of` is the newest event time (its Kafka timestamp). Progress is read from committed
offsets, not from /metrics: rendering /metrics costs the worker ~0.5 s per scrape once every
region has series, which would slow what is measured. Stage one commits every second, so the
end can be late by up to that much. When its commits stall (they do, while its
producer buffer is full), progress is read from `ccpulse_events_total` every 2 s instead.

Freshness: a producer sends simulated events (every region but one) at a steady rate, with event
times in the past, plus 10 marker events a second: `contact.started` in the one spare region
(`MARKER_REGION`), with `ts` = the wall clock when sent. Marker i is on the metric topic when a
`MARKER_REGION|voice|60m` record counts >= i contacts (its Kafka timestamp), and on /metrics when
`ccpulse_contacts_total{region=MARKER_REGION}` >= i. Records are published in rounds about 1 s
apart, so a record's delay includes up to 1 s (0.5 s on average) of waiting for the next round. Throughout the
measured time the whole page is scraped every 15 s, as the deployed Prometheus does
(deploy/prometheus/prometheus.yml); the second half also asks /metrics every MARKER_POLL_S for
the marker series only (`?name[]=ccpulse_contacts_total`) and measures /metrics: the time of the
answer that first shows the marker, an upper bound up to MARKER_POLL_S late. (Until 2026-12-01
the second half scraped the whole page every second, 55k lines at 0.2-1 s each: fifteen times
the load Prometheus puts on a worker, which took a third of the worker's time at 5,000 events/s.)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from kafka import KafkaConsumer
from stack import Broker, TopicSet, Worker, follow_group, preload, samples, say, wait_for

from streams.core.timefmt import now_ms, parse_rfc3339
from streams.regions import catalogue
from streams.simulate.generator import SimConfig, Simulation

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
MARKER_REGION = "RU-CHU"
#: the deployed Prometheus' scrape interval (deploy/prometheus/prometheus.yml)
PROMETHEUS_SCRAPE_S = 15.0
#: how often the marker series is asked for: the resolution of the /metrics delays
MARKER_POLL_S = 0.25
BUSY_HOUR_UTC = 8  # 11:00 in Moscow: the model's busiest hour


@dataclass
class Dataset:
    events: list[tuple[bytes, bytes]]
    max_ts: int
    description: str


def busy_hour(duration_s: float, volume: float, seed: int = 7) -> Dataset:
    """The last finished 08:00 UTC hour (or its first `duration_s`) of all regions, `volume` x natural."""
    now = now_ms()
    start = now // DAY_MS * DAY_MS + BUSY_HOUR_UTC * HOUR_MS
    if start + duration_s * 1000 > now - 300_000:
        start -= DAY_MS
    sim = Simulation(SimConfig(start_ms=start, seed=seed, duration_s=duration_s, volume=volume))
    delivered = list(sim)
    events = [(key, value) for _, key, value in delivered]
    description = (f"{duration_s / 60:g} simulated minutes of all regions from 08:00 UTC at {volume:g}x the "
                   f"natural volume ({len(events):,} events)")
    return Dataset(events, max(at for at, _, _ in delivered), description)


def background(count: int, volume: float, seed: int = 11) -> list[tuple[bytes, bytes]]:
    """`count` simulated events of every region but the marker's, all with event times in the past."""
    regions = tuple(code for code in catalogue() if code != MARKER_REGION)
    hours = 6
    sim = Simulation(SimConfig(start_ms=now_ms() - hours * HOUR_MS, seed=seed, duration_s=hours * 3600 - 120,
                               count=count, regions=regions, volume=volume))
    return [(key, value) for _, key, value in sim]


def throughput(broker: Broker, data: Dataset, workers: int, out: Path, label: str, cap_s: float,
               wrapper: tuple[str, ...] = ()) -> dict[str, Any]:
    """Sustained events/s of `workers` workers over a pre-loaded events topic (see the module doc).

    Workers start one after the other, each once the previous one answers. A run slower than
    `cap_s` is cut there and its rate taken over the events committed by then."""
    topics = TopicSet(broker, label)
    say(f"  pre-loading {len(data.events):,} events into {topics.topic('events')} ...")
    preload(broker.bootstrap, topics.topic("events"), topics.partitions, data.events)
    procs: list[Worker] = []
    try:
        for number in range(workers):
            procs.append(Worker(topics, f"{label}-w{number}", out, wrapper))
            procs[-1].wait_ready()
        total = len(data.events)
        progress = follow_group(broker, f"{topics.app_id}-intake", topics.topic("events"), total, procs, label, cap_s,
                                probe=lambda: int(sum(_events_read(proc) for proc in procs)))
        rss = [proc.rss() for proc in procs]
        complete = progress.done >= total
        record_at = _record_reflecting(broker.bootstrap, topics.topic("metrics"), data.max_ts) if complete else None
        scrape_started = time.perf_counter()
        page = procs[0].metrics()
        scrape_s = time.perf_counter() - scrape_started
        ended = max(progress.ended, record_at or 0.0)
        timed = progress.done - progress.first
        return {"workers": workers, "events": total, "complete": complete, "timed_events": timed,
                "commits_stalled": progress.stalled, "timed_from_start": progress.from_start,
                "agent_crashes": [line for proc in procs for line in proc.crashes()],
                "seconds": ended - progress.started, "events_per_s": timed / (ended - progress.started),
                "record_after_commit_s": None if record_at is None else record_at - progress.ended,
                "events_total": sum(samples(proc.metrics(), "ccpulse_events_total") for proc in procs),
                "metrics_page_bytes": len(page), "metrics_page_lines": page.count("\n"), "metrics_scrape_s": scrape_s,
                "rss_mib": rss, "peak_rss_mib": [proc.peak_rss for proc in procs], "topic": topics.topic("events")}
    finally:
        for proc in procs:
            proc.stop()


def _events_read(worker: Worker) -> float:
    return samples(worker.metrics("ccpulse_events_total"), "ccpulse_events_total")


def _record_reflecting(bootstrap: str, topic: str, max_ts: int, timeout_s: float = 60) -> float:
    """Wall time (s) at which the first record with `as_of` >= `max_ts` was produced to the metric topic."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                             enable_auto_commit=False)
    try:
        def found() -> float | None:
            for batch in consumer.poll(timeout_ms=500, max_records=50_000).values():
                for message in batch:
                    if parse_rfc3339(orjson.loads(message.value)["as_of"]) >= max_ts:
                        return message.timestamp / 1000
            return None
        return wait_for(found, timeout_s, f"a record on {topic} with as_of at the newest event", interval=0)
    finally:
        consumer.close()


def freshness(broker: Broker, out: Path, rate: int, seconds: float, warmup_s: float, drain_s: float,
              volume: float) -> dict[str, Any]:
    """p50/p99 delay from a marker's production to the metric topic and to /metrics at `rate` events/s.

    After the load stops, markers get `drain_s` more seconds to show; one that has not by then
    counts with the delay until then, a lower bound (and `unseen_after_drain` says how many)."""
    topics = TopicSet(broker, "fresh")
    needed = int(rate * (seconds + warmup_s))
    say(f"  generating {needed:,} background events ...")
    events = background(needed, volume)
    if len(events) < needed:
        raise RuntimeError(f"the simulation gave {len(events):,} of {needed:,} background events; raise the volume")
    worker = Worker(topics, "fresh-w0", out)
    try:
        worker.wait_ready()
        polls: list[tuple[float, float]] = []
        scrapes: list[float] = []
        load = asyncio.run(_steady_load(broker.bootstrap, topics.topic("events"), events, rate,
                                        (warmup_s, warmup_s + seconds / 2, warmup_s + seconds), worker, polls,
                                        scrapes))
        markers = load["markers"]
        deadline = time.time() + drain_s
        while _marker_count(worker, polls) < len(markers) and time.time() < deadline:
            time.sleep(1.0)
        record_times = _marker_records(broker.bootstrap, topics.topic("metrics"), len(markers),
                                       max(1.0, deadline - time.time()))
        given_up = time.time()
        quiet_from = markers[0] + warmup_s * 1000
        scraped_from = markers[0] + (warmup_s + seconds / 2) * 1000
        quiet = [(i, sent) for i, sent in enumerate(markers, 1) if quiet_from <= sent < scraped_from]
        scraped = [(i, sent) for i, sent in enumerate(markers, 1) if sent >= scraped_from]
        to_record = [record_times.get(i, given_up) - sent / 1000 for i, sent in quiet]
        to_record_scraped = [record_times.get(i, given_up) - sent / 1000 for i, sent in scraped]
        to_metrics = [_first(polls, i, given_up) - sent / 1000 for i, sent in scraped]
        unseen = {"record": sum(i not in record_times for i, _ in quiet),
                  "metrics": sum(_first(polls, i, 0.0) == 0.0 for i, _ in scraped)}
        return {"rate": rate, "achieved_rate": load["sent"] / (warmup_s + seconds), "seconds": seconds,
                "record_markers": len(quiet), "metrics_markers": len(scraped), "rss_mib": worker.rss(),
                "full_scrapes": len(scrapes), "full_scrape_max_s": max(scrapes, default=float("nan")),
                "unseen_after_drain": unseen, "drain_s": drain_s,
                "record_p50_s": percentile(to_record, 50), "record_p99_s": percentile(to_record, 99),
                "record_p99_while_scraped_s": percentile(to_record_scraped, 99),
                "metrics_p50_s": percentile(to_metrics, 50), "metrics_p99_s": percentile(to_metrics, 99)}
    finally:
        worker.stop()


async def _steady_load(bootstrap: str, topic: str, events: list[tuple[bytes, bytes]], rate: int,
                       phases: tuple[float, float, float], worker: Worker,
                       polls: list[tuple[float, float]], scrapes: list[float]) -> dict[str, Any]:
    """Send `events` at `rate`/s plus 10 markers/s until `phases[2]` s, scraping the whole of /metrics
    every PROMETHEUS_SCRAPE_S from `phases[0]` s on and polling the markers' series every MARKER_POLL_S from
    `phases[1]` s on; the marker send times (epoch ms) and the number of events sent."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    stop = asyncio.Event()
    poller: asyncio.Task[None] | None = None
    scraper: asyncio.Task[None] | None = None
    markers: list[int] = []
    sent = 0
    try:
        source = iter(events)
        started = time.monotonic()
        next_note = 5.0
        for tick in itertools.count():
            elapsed = tick * 0.01
            if elapsed >= phases[2]:
                break
            if scraper is None and elapsed >= phases[0]:
                scraper = asyncio.create_task(_scrape_like_prometheus(worker, scrapes, stop))
            if poller is None and elapsed >= phases[1]:
                poller = asyncio.create_task(_poll_markers(worker, polls, stop))
            await asyncio.sleep(max(0.0, started + elapsed - time.monotonic()))
            due = int(rate * elapsed) - sent
            for key, value in itertools.islice(source, due):
                await producer.send(topic, value=value, key=key)
            sent += due
            if tick % 10 == 0:
                ts = now_ms()
                number = len(markers) + 1
                marker = {"event_id": f"marker-{number}", "type": "contact.started", "ts": ts,
                          "contact_id": f"marker-{number}", "region": MARKER_REGION, "channel": "voice"}
                await producer.send(topic, value=orjson.dumps(marker), key=marker["contact_id"].encode())
                markers.append(ts)
            if elapsed >= next_note:
                phase = "warm-up" if elapsed < phases[0] else ("records" if elapsed < phases[1] else "/metrics")
                say(f"  ... {elapsed:.0f} s at {rate:,} events/s ({phase}), {len(markers)} markers sent")
                next_note += 5
        await producer.flush()
        return {"markers": markers, "sent": sent}
    finally:
        stop.set()
        for task in (poller, scraper):
            if task is not None:
                await task
        await producer.stop()


async def _poll_markers(worker: Worker, polls: list[tuple[float, float]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.to_thread(_marker_count, worker, polls)
        await asyncio.sleep(MARKER_POLL_S)


async def _scrape_like_prometheus(worker: Worker, durations: list[float], stop: asyncio.Event) -> None:
    """The whole page every PROMETHEUS_SCRAPE_S, first at once; how long each took goes to `durations`."""
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.to_thread(worker.metrics)
        durations.append(time.perf_counter() - started)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), PROMETHEUS_SCRAPE_S)


def _marker_count(worker: Worker, polls: list[tuple[float, float]]) -> float:
    """Markers counted on /metrics now; appends (wall time at the answer, count) to `polls`."""
    count = samples(worker.metrics("ccpulse_contacts_total"), "ccpulse_contacts_total", region=MARKER_REGION)
    polls.append((time.time(), count))
    return count


def _marker_records(bootstrap: str, topic: str, wanted: int, timeout_s: float) -> dict[int, float]:
    """For each marker count i, when the first record counting >= i markers was produced (wall s);
    what the topic holds after `timeout_s` at most."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                             enable_auto_commit=False)
    key = f"{MARKER_REGION}|voice|60m".encode()
    first_at: dict[int, float] = {}
    counted = 0
    deadline = time.monotonic() + timeout_s
    try:
        while counted < wanted and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500, max_records=50_000).values():
                for message in sorted((m for m in batch if m.key == key), key=lambda m: m.timestamp):
                    contacts = orjson.loads(message.value)["contacts"]
                    for number in range(counted + 1, contacts + 1):
                        first_at[number] = message.timestamp / 1000
                    counted = max(counted, contacts)
        return first_at
    finally:
        consumer.close()


def _first(polls: list[tuple[float, float]], number: int, default: float) -> float:
    """When /metrics first showed `number` markers (or `default`)."""
    return next((at for at, count in polls if count >= number), default)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * pct / 100) - 1)] if ordered else float("nan")
