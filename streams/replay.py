"""`ccpulse replay`: the streaming computation over event files (spec: Replay).

The input is read whole, then processed in event-time order (ties broken by event id, then by
the line's bytes), so the result cannot depend on the order of the lines: even which of two
conflicting events counts, or which of two different lines with one event id, is decided by their
content, not by position. Only (ts, id, raw bytes) are held between the two passes.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

import orjson

from streams import config
from streams.core.engine import ACCEPTED, DUPLICATE, REJECTED, Engine
from streams.core.events import REASONS
from streams.core.timefmt import format_ms, now_ms, parse_rfc3339
from streams.errors import CcpulseError
from streams.tuning import tune_gc

PROGRESS_EVERY_S = 2.0
#: events handed to the engine at a time, between which progress may be shown: a month of events
#: takes minutes to process after it is read
PROCESS_SLICE = 65_536


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("replay", help="compute metric records from event files",
                                   description="Compute the metric records of the spec from JSON Lines "
                                               "event files (.gz allowed, - for stdin).")
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--as-of", help="RFC 3339 time to compute at (default: the largest ts in the input)")
    parser.add_argument("--config", help="configuration file (TOML)")
    parser.add_argument("--dlq", help="write rejected events here as JSON Lines")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = config.load(args.config)
    as_of = _parse_as_of(args.as_of)
    tune_gc(freeze_survivors=True)
    progress = Progress(sys.stderr)
    with _open_dlq(args.dlq) as dlq:
        def write_dead_letter(raw: bytes, letter: Any) -> None:
            if dlq is not None:
                dlq.write(orjson.dumps(letter) + b"\n")

        clock_ms = now_ms()
        engine = Engine(settings, reject_late=False, dead_letters=write_dead_letter, clock=lambda: clock_ms)
        pending: list[tuple[int, str, bytes]] = []
        for raw in _lines(args.files, progress):
            event = engine.decode(raw)
            if event is not None:
                pending.append((event.ts, event.event_id, raw))
        pending.sort()  # by time, event id, then the bytes: no tie is left to the input's order
        cutoff = as_of if as_of is not None else (pending[-1][0] if pending else None)
        due = [raw for ts, _, raw in pending if ts <= cutoff]
        not_yet = len(pending) - len(due)
        del pending
        for start in range(0, len(due), PROCESS_SLICE):
            engine.process_lines(due[start:start + PROCESS_SLICE])
            progress.processed(min(start + PROCESS_SLICE, len(due)), len(due))
        records = engine.records(cutoff) if cutoff is not None else []
    sys.stdout.buffer.write(orjson.dumps(records, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()
    progress.summary(engine, not_yet, cutoff, len(records))
    return 0


def _parse_as_of(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError as exc:
        raise CcpulseError(f"--as-of {text!r}: {exc}") from None


def _open_dlq(path: str | None) -> Any:
    if path is None:
        return contextlib.nullcontext()
    try:
        return open(path, "wb")
    except OSError as exc:
        raise CcpulseError(f"cannot write --dlq {path}: {exc.strerror}") from None


def _open(path: str) -> IO[bytes]:
    if path == "-":
        stream: IO[bytes] = sys.stdin.buffer
        peek = stream.peek(2)[:2] if hasattr(stream, "peek") else b""
        return gzip.GzipFile(fileobj=stream) if peek == b"\x1f\x8b" else stream
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by _lines
    except OSError as exc:
        raise CcpulseError(f"cannot read {path}: {exc.strerror}") from None
    if path.endswith(".gz"):
        return gzip.GzipFile(fileobj=handle)
    return handle


def _lines(paths: list[str], progress: Progress) -> Iterator[bytes]:
    """Non-blank lines of every file, in order; one clear error if a file cannot be read."""
    for path in paths:
        handle = _open(path)
        try:
            for line in handle:
                progress.line()
                line = line.rstrip(b"\r\n")
                if line.strip():
                    yield line
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise CcpulseError(f"cannot read {path}: {exc}") from None
        finally:
            if handle is not sys.stdin.buffer:
                handle.close()


class Progress:
    """A progress line on stderr while reading, then the summary of what happened."""

    def __init__(self, stream: io.TextIOBase | IO[str]) -> None:
        self.stream = stream
        self.lines = 0
        self.started = time.monotonic()
        self.shown = self.started

    def line(self) -> None:
        self.lines += 1
        if self.lines % 4096 == 0 and self._due():
            rate = self.lines / (self.shown - self.started)
            print(f"replay: read {self.lines:,} lines ({rate:,.0f}/s)", file=self.stream, flush=True)

    def processed(self, done: int, total: int) -> None:
        if self._due():
            print(f"replay: processed {done:,} of {total:,} events in time order", file=self.stream, flush=True)

    def _due(self) -> bool:
        """Whether a progress line is due; if so, it is taken as shown now."""
        now = time.monotonic()
        if now - self.shown < PROGRESS_EVERY_S:
            return False
        self.shown = now
        return True

    def summary(self, engine: Engine, not_yet: int, as_of: int | None, records: int) -> None:
        results = engine.results
        elapsed = time.monotonic() - self.started
        as_of_text = format_ms(as_of) if as_of is not None else "none (no events)"
        print(f"replay: {self.lines:,} lines in {elapsed:.1f} s; {results[ACCEPTED]:,} accepted, "
              f"{results[DUPLICATE]:,} duplicates, {results[REJECTED]:,} rejected, "
              f"{not_yet:,} after as_of; as_of {as_of_text}; {records:,} records", file=self.stream)
        for reason in REASONS:
            if engine.rejections[reason]:
                print(f"replay: rejected {reason}: {engine.rejections[reason]:,}", file=self.stream)
        self.stream.flush()
