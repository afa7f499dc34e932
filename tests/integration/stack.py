"""Live simulated traffic through the real stack, for the end-to-end tests of alerts and dashboards.

Prometheus rules and dashboard queries work on counters over wall-clock windows, so traffic has to
arrive in real time: `Feed` sends each simulated event when the wall clock reaches its delivery
time (event time = now, never in the future). Simulations start `backlog` minutes in the past, so
the first realtime minute already has a steady flow of every event type (a voice visit leaves its
queue minutes after the contact started) and the in-stream windows (5m, 15m) are full from the
start; that backlog is sent at once. Prometheus never counts it (a counter's first sample has no
increase), only what follows.

Volumes are given in contacts per second and converted with the simulator's daily profile at the
region's current local hour, so a test behaves the same at 3 a.m. and at noon.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import heapq
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from helpers import PrometheusStack
from workers import Pipeline, Worker

from streams import regions as region_catalogue
from streams.simulate import model, scenarios
from streams.simulate.generator import SimConfig, Simulation, natural_contacts_per_s

MINUTE_MS = 60_000
#: longest pause of the feeder between two checks of the clock and of its stop flag
FEED_STEP_S = 0.5


@dataclasses.dataclass(frozen=True)
class Traffic:
    """One region's simulated traffic: contacts per second (at the current hour), optional scenario."""

    region: str
    contacts_per_s: float
    seed: int
    scenario: str | None = None


def volume(region: str, contacts_per_s: float, at_ms: int) -> float:
    """The simulator `volume` that gives `region` about `contacts_per_s` at the local hour of `at_ms`."""
    local = dt.datetime.fromtimestamp(at_ms / 1000, tz=region_catalogue.zone(region))
    natural = natural_contacts_per_s((region,)) * model.profile(local.hour + local.minute / 60)
    return contacts_per_s / natural


def simulation(traffic: Traffic, start_ms: int, duration_s: float) -> Simulation:
    regions = (traffic.region,)
    chosen = () if traffic.scenario is None else (scenarios.parse(traffic.scenario, start_ms, regions),)
    return Simulation(SimConfig(start_ms=start_ms, seed=traffic.seed, duration_s=duration_s, regions=regions,
                                volume=volume(traffic.region, traffic.contacts_per_s, start_ms), scenarios=chosen))


class Feed:
    """A thread that sends the merged simulations to the pipeline's events topic in real time."""

    def __init__(self, pipeline: Pipeline, simulations: list[Simulation]) -> None:
        self.pipeline = pipeline
        self.events = heapq.merge(*simulations, key=lambda event: event[0])
        self.sent = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feed", daemon=True)

    def start(self) -> Feed:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def check(self) -> None:
        """Fail the calling test if the feeder died (a dead feeder looks like a broken pipeline)."""
        if self.error is not None:
            raise AssertionError(f"the traffic feeder failed: {self.error!r}") from self.error
        assert self._thread.is_alive(), "the traffic feeder ran out of simulated events"

    def _run(self) -> None:
        try:
            batch: list[tuple[bytes, bytes]] = []
            for deliver_ms, key, value in self.events:
                while not self._stop.is_set() and (ahead := deliver_ms / 1000 - time.time()) > 0:
                    self._flush(batch)
                    self._stop.wait(min(ahead, FEED_STEP_S))
                if self._stop.is_set():
                    return
                batch.append((key, value))
                if len(batch) >= 1000:
                    self._flush(batch)
        except BaseException as exc:  # reported to the test by check()
            self.error = exc

    def _flush(self, batch: list[tuple[bytes, bytes]]) -> None:
        if batch:
            self.pipeline.send(batch)
            self.sent += len(batch)
            batch.clear()


@dataclasses.dataclass
class Live:
    """A pipeline with one worker scraped by Prometheus, fed with realtime traffic."""

    pipeline: Pipeline
    worker: Worker
    prometheus: PrometheusStack
    feed: Feed
    started: float  # time.monotonic() when the feed started


@contextlib.contextmanager
def live(root: Path, bootstrap: str, prometheus: PrometheusStack, traffic: list[Traffic], *,
         backlog_min: int = 20, run_min: int = 30) -> Iterator[Live]:
    """Start a pipeline and a worker, point Prometheus at it and feed `traffic`; undo it all on exit."""
    pipeline = Pipeline(root, bootstrap, partitions=2)
    feed: Feed | None = None
    try:
        worker = pipeline.worker("w1").start()
        prometheus.scrape([worker.address])
        start_ms = (int(time.time() * 1000) - backlog_min * MINUTE_MS) // MINUTE_MS * MINUTE_MS
        duration_s = (backlog_min + run_min) * 60
        feed = Feed(pipeline, [simulation(t, start_ms, duration_s) for t in traffic]).start()
        yield Live(pipeline, worker, prometheus, feed, time.monotonic())
    finally:
        if feed is not None:
            feed.stop()
        prometheus.scrape([])
        pipeline.close()
