"""Runs a simulation into a sink at the requested pace, with a progress line and a summary.

Pacing: in real-time mode an event is sent when the wall clock reaches its delivery time (event
time = wall clock); otherwise events go as fast as the sink takes them, or at ``rate`` per wall
second (events, or contacts started), which compresses the simulated clock by
``rate / natural rate``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from streams.core.timefmt import format_ms
from streams.simulate.generator import Simulation
from streams.simulate.sinks import Sink

_TTY_INTERVAL_S = 0.25
_LOG_INTERVAL_S = 5.0
_IDLE_SLEEP_S = 0.2


class StopRequest:
    """A stop asked for by a signal handler (Ctrl-C) or another thread, read between two events.

    A plain flag, not a `threading.Event`: `Event.set` takes the event's lock, and a handler runs in
    the main thread between two bytecodes, possibly while that thread holds the same lock inside
    `Event.wait`; the handler then waits for itself forever (the simulator hung on Ctrl-C so).
    Waiting is therefore in sleeps of at most `_IDLE_SLEEP_S`, which a handler does not cut short."""

    __slots__ = ("asked",)

    def __init__(self) -> None:
        self.asked = False

    def set(self) -> None:
        self.asked = True

    def is_set(self) -> bool:
        return self.asked


@dataclass(frozen=True)
class Pacing:
    realtime: bool = False
    rate: float | None = None
    unit: str = "events"


class Progress:
    """One status line on stderr: rewritten in place on a terminal, a line every few seconds otherwise."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self._last = 0.0
        self._width = 0

    def update(self, sim: Simulation, force: bool = False) -> None:
        now = time.monotonic()
        if self.quiet or (not force and now - self._last < (_TTY_INTERVAL_S if self.tty else _LOG_INTERVAL_S)):
            return
        self._last = now
        line = self.line(sim)
        if self.tty:
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def line(self, sim: Simulation) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return (f"simulate: {sim.events:,} events, {sim.contacts:,} contacts, "
                f"{sim.events / elapsed:,.0f} events/s, event time {format_ms(sim.time_ms)}")

    def finish(self, sim: Simulation, sent: int, interrupted: bool) -> None:
        if self.quiet:
            return
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
        how = "interrupted" if interrupted else "done"
        elapsed = time.monotonic() - self.started
        self.stream.write(
            f"simulate: {how}: {sent:,} events sent ({sim.contacts:,} contacts) in {elapsed:,.1f} s, "
            f"event time {format_ms(sim.config.start_ms)} .. {format_ms(sim.time_ms)}, "
            f"seed {sim.config.seed}\n")
        self.stream.flush()


def run(sim: Simulation, sink: Sink, pacing: Pacing, progress: Progress,
        stop: StopRequest | None = None) -> bool:
    """Send everything (or until Ctrl-C, or `stop` is set); always closes the sink. Returns True when
    interrupted. A signal handler should set `stop` rather than raise: the run then ends between two
    events, while an exception raised from the handler can land inside the sink's write (inside gzip's,
    say, between compressing and updating the checksum) and leave a corrupt file."""
    stop = stop or StopRequest()
    interrupted = False
    sent = 0
    begun = time.monotonic()
    try:
        for deliver_ms, key, value in sim:
            if pacing.realtime:
                _wait(lambda d=deliver_ms: d / 1000 - time.time(), sim, progress, stop)
            elif pacing.rate:
                done = sim.contacts if pacing.unit == "contacts" else sim.events
                _wait(lambda n=done: n / pacing.rate - (time.monotonic() - begun), sim, progress, stop)
            if stop.is_set():
                interrupted = True
                break
            sink.write(key, value)
            sent += 1
            progress.update(sim)
    except KeyboardInterrupt:
        interrupted = True
    except BrokenPipeError:
        pass  # the reader of stdout went away (e.g. `| head`): stop like at the end
    finally:
        sink.close()
        progress.finish(sim, sent, interrupted)
    return interrupted


def _wait(remaining_s: Callable[[], float], sim: Simulation, progress: Progress, stop: StopRequest) -> None:
    """Sleep in short steps until ``remaining_s()`` is not positive or a stop is asked for, keeping the
    progress line alive."""
    left = remaining_s()
    while left > 0 and not stop.is_set():
        time.sleep(min(left, _IDLE_SLEEP_S))
        progress.update(sim)
        left = remaining_s()
