"""The whole computation in one process: decode -> track -> aggregate, with watermark and counters.

`replay` and the benchmarks drive it directly; the streaming stages use the same pieces split across
two stages (contact-keyed tracking, region-keyed aggregation).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import islice
from typing import Any

from streams.config import Settings
from streams.core import facts as F
from streams.core.aggregator import Aggregator
from streams.core.deadletter import dead_letter
from streams.core.events import Event, Rejected, decode
from streams.core.records import build_records
from streams.core.timefmt import DAY_MS, MINUTE_MS, ProcessingClock, format_ms, now_ms
from streams.core.tracker import Tracker
from streams.regions import catalogue

ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"
#: events decoded and tracked before their facts are counted (`Engine.process_lines`)
CHUNK_LINES = 1000

DeadLetterSink = Callable[[bytes, Mapping[str, Any]], Any]


class Watermark:
    """The largest event time accepted so far, and the late-event rule that follows from it."""

    __slots__ = ("floor", "horizon_ms", "next_minute", "value")

    def __init__(self, horizon_ms: int) -> None:
        self.horizon_ms = horizon_ms
        self.value: int | None = None
        #: the earliest event time still accepted (value - horizon), kept so the check is one comparison
        self.floor = -horizon_ms
        #: the start of the minute after the value's, kept so that `advance` compares instead of
        #: dividing (a division of epoch milliseconds is CPython's slow path for large integers)
        self.next_minute = -MINUTE_MS

    def check(self, event: Event) -> None:
        if event.ts < self.floor:
            raise Rejected("too_late", "ts", f"ts is {(self.value - event.ts) / 3_600_000:.1f} h before the "
                           f"watermark {format_ms(self.value)}, beyond the {self.horizon_ms // 3_600_000} h horizon")

    def advance(self, ts: int) -> bool:
        """Move forward; True when the watermark entered a new minute (time to release state)."""
        if self.value is None or ts > self.value:
            self.value = ts
            self.floor = ts - self.horizon_ms
            if ts >= self.next_minute:
                self.next_minute = ts - ts % MINUTE_MS + MINUTE_MS
                return True
        return False


class Engine:
    """Decode, track and aggregate events, counting every outcome; never raises on bad input."""

    def __init__(self, settings: Settings, *, reject_late: bool = True,
                 dead_letters: DeadLetterSink | None = None,
                 clock: Callable[[], int] = now_ms) -> None:
        pipeline = settings.pipeline
        self.settings = settings
        self.regions = frozenset(catalogue(pipeline.regions))
        self.horizon_ms = pipeline.retention_horizon_s * 1000
        self.future_ms = pipeline.future_tolerance_s * 1000
        ticket_ms = pipeline.ticket_retention_days * DAY_MS
        self.tracker = Tracker({}, {}, self.horizon_ms, ticket_ms)
        self.aggregator = Aggregator(settings.channels, pipeline.short_abandon_s, self.horizon_ms, ticket_ms)
        self.watermark = Watermark(self.horizon_ms)
        self.reject_late = reject_late
        self.dead_letters = dead_letters
        self.clock = clock
        self.processing_clock = ProcessingClock(clock)
        self.accepted = self.duplicates = self.rejected = 0
        self.rejections: Counter[str] = Counter()

    @property
    def results(self) -> Counter[str]:
        """Events by result; kept as plain integers since counting is on the hot path."""
        return +Counter({ACCEPTED: self.accepted, DUPLICATE: self.duplicates, REJECTED: self.rejected})

    def decode(self, raw: bytes) -> Event | None:
        """Validate one raw event; a rejection is counted and dead-lettered, and None returned."""
        try:
            return decode(raw, self.regions, self.processing_clock, self.future_ms)
        except Rejected as rejection:
            self.reject(raw, rejection)
            return None

    def process_raw(self, raw: bytes) -> None:
        self._count(self._track((raw,)))

    def process_lines(self, lines: Iterable[bytes]) -> None:
        """Process raw events in order, as `process_raw` one by one would, a chunk at a time: each
        chunk is decoded and tracked, then its facts are counted. Two tight loops instead of one
        that alternates between them ran ~17 % faster (median of same-process runs of
        benchmarks/core_throughput.py's figure against the one-by-one loop)."""
        remaining = iter(lines)
        while chunk := list(islice(remaining, CHUNK_LINES)):
            self._count(self._track(chunk))

    def _track(self, raws: Sequence[bytes]) -> list[tuple[list[F.Fact], int | None]]:
        """Decode, check and track each event; their facts in segments, each ending where the
        watermark entered a new minute (with that watermark, for `_count` to release state at the
        very point the one-by-one order would)."""
        regions, clock, future_ms = self.regions, self.processing_clock, self.future_ms
        track, watermark, reject_late = self.tracker.process, self.watermark, self.reject_late
        segments: list[tuple[list[F.Fact], int | None]] = []
        facts: list[F.Fact] = []
        accepted = duplicates = 0  # counted in locals, stored once per chunk: this runs for every event
        for raw in raws:
            try:
                event = decode(raw, regions, clock, future_ms)
                if event.ts < watermark.floor and reject_late:  # the cheaper test first: it is per event
                    watermark.check(event)
                new = track(event)
            except Rejected as rejection:
                self.reject(raw, rejection)
                continue
            if new is None:
                duplicates += 1
                continue
            accepted += 1
            facts += new
            if watermark.advance(event.ts):
                self.tracker.release(watermark.value)
                segments.append((facts, watermark.value))
                facts = []
        segments.append((facts, None))
        self.accepted += accepted
        self.duplicates += duplicates
        return segments

    def _count(self, segments: list[tuple[list[F.Fact], int | None]]) -> None:
        aggregator = self.aggregator
        for facts, release_at in segments:
            aggregator.apply(facts)
            if release_at is not None:
                aggregator.release(release_at)

    def reject(self, raw: bytes, rejection: Rejected) -> None:
        self.rejected += 1
        self.rejections[rejection.reason] += 1
        if self.dead_letters is not None:
            self.dead_letters(raw, dead_letter(raw, rejection, self.clock()))

    def records(self, as_of_ms: int | None = None) -> list[dict[str, Any]]:
        as_of = self.watermark.value if as_of_ms is None else as_of_ms
        if as_of is None:
            return []
        return build_records(self.aggregator, as_of, self.settings.channels)
