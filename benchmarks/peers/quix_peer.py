"""Peer (b): the same job with Quix Streams: event-time hopping windows over a StreamingDataFrame.

The event's `ts` is the message time (a timestamp extractor); a stateful `apply` on the
contact-keyed stream pairs each queue visit's entry and exit; `group_by` re-keys completed
visits by `region|channel`; `hopping_window(15 min, 1 min).agg(Sum...)` aggregates, and `.final()`
emits each window when it closes, after a grace of one window length (re-keyed visits from
partitions read at different paces arrive minutes out of order, and Quix drops late ones).
`.current()` would emit every updated window, 15 per visit: fresher, but far more output than
ccpulse's once-a-second records, so the cheaper `final()` is used.

Run: BENCH_BOOTSTRAP=... BENCH_TOPIC=... BENCH_GROUP=... BENCH_DATADIR=... python quix_peer.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from quixstreams import Application, State
from quixstreams.dataframe.windows import Sum

sys.path.insert(0, str(Path(__file__).resolve().parent))
from job import STEP_MS, WINDOW_MS, summary, visit_counts

from streams.core.timefmt import parse_rfc3339

#: re-keying interleaves partitions read at different paces; without grace Quix drops their windows as late
GRACE_MS = WINDOW_MS


def event_time(value: Any, headers: Any, timestamp: int, timestamp_type: Any) -> int:
    """The event's own `ts` (RFC 3339 or epoch ms) as the message time, in ms."""
    ts = value.get("ts") if isinstance(value, dict) else None
    if isinstance(ts, int):
        return ts
    return parse_rfc3339(ts) if isinstance(ts, str) else timestamp


def pair(event: dict[str, Any], state: State) -> dict[str, Any] | None:
    """The completed visit once both ends of a queue visit are known (state is per contact)."""
    key = f"visit{event.get('visit', 1)}"
    seen = state.get(key)
    ts = event_time(event, None, 0, None)
    if event["type"] == "queue.entered":
        if seen is None:
            state.set(key, ts)
            return None
        state.delete(key)  # its queue.left came first
        return completed(event, seen["reason"], (seen["ts"] - ts) / 1000)
    if event.get("wait_s") is not None or isinstance(seen, int):
        if seen is not None:
            state.delete(key)
        wait = event["wait_s"] if event.get("wait_s") is not None else (ts - seen) / 1000
        return completed(event, event["reason"], wait)
    state.set(key, {"ts": ts, "reason": event["reason"]})
    return None


def completed(event: dict[str, Any], reason: str, wait_s: float) -> dict[str, Any]:
    answered, waited, within, denominator = visit_counts(event["channel"], reason, wait_s)
    return {"region": event["region"], "channel": event["channel"], "answered": answered, "wait_sum": waited,
            "within": within, "denominator": denominator}


def main() -> None:
    group = os.environ["BENCH_GROUP"]
    app = Application(broker_address=os.environ["BENCH_BOOTSTRAP"], consumer_group=group,
                      auto_offset_reset="earliest", commit_interval=1.0, state_dir=os.environ["BENCH_DATADIR"],
                      loglevel="WARNING")
    events = app.topic(os.environ["BENCH_TOPIC"], key_deserializer="str", timestamp_extractor=event_time)
    output = app.topic(f"{group}-out")
    sdf = app.dataframe(events)
    sdf = sdf.filter(lambda event: event.get("type") in ("queue.entered", "queue.left"))
    sdf = sdf.apply(pair, stateful=True).filter(lambda visit: visit is not None)
    sdf = sdf.group_by(lambda visit: f"{visit['region']}|{visit['channel']}", name="region-channel")
    sdf = sdf.hopping_window(duration_ms=WINDOW_MS, step_ms=STEP_MS, grace_ms=GRACE_MS).agg(
        answered=Sum("answered"), wait_sum=Sum("wait_sum"), within=Sum("within"),
        denominator=Sum("denominator")).final()
    sdf = sdf.apply(lambda w: {"start": w["start"], "end": w["end"],
                               **summary(w["answered"], w["wait_sum"], w["within"], w["denominator"])})
    sdf.to_topic(output)
    app.run()


if __name__ == "__main__":
    main()
