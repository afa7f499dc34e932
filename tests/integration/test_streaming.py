"""`ccpulse worker` against the real broker: the worker path, streaming equals replay, crash,
scale-out, bad input and SLA breaches (issue 2's worker path, issue 4's "Done when").

Every test has its own topics and app id (`workers.Pipeline`), runs real worker processes, and
waits for conditions with deadlines. Final metric records are read back from the compacted
metric topic as "last record per key" and compared, field by field, with `ccpulse replay` over
the same events. Simulated traffic lies in the past (a 07:00 UTC hour, busy in every Russian
time zone) so that `future_timestamp` never fires on valid events.
"""

from __future__ import annotations

import collections
import itertools
import random
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from helpers import PrometheusStack, wait_until
from prometheus_client.parser import text_string_to_metric_families
from workers import Pipeline, TopicReader, Worker

from streams.core.timefmt import format_ms, now_ms, parse_rfc3339
from streams.simulate import scenarios
from streams.simulate.generator import SimConfig, Simulation
from streams.streaming.alert_follower import SOURCE_HEADER

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
REGIONS = ("RU-MOW", "RU-SPE", "RU-CHE", "RU-SVE", "RU-NVS", "RU-KDA", "RU-TA", "RU-BA", "RU-NIZ", "RU-SAM",
           "RU-PRI", "RU-KHA")
RECORDS_TIMEOUT_S = 90

Event = tuple[int, bytes, bytes]  # (event time or delivery time in ms, key, value)


# --- traffic -------------------------------------------------------------------------------------

def past_start(duration_s: float, hour_utc: int) -> int:
    """`hour_utc`:00 of the latest day on which a run of `duration_s` ends at least 10 minutes ago."""
    now = int(time.time() * 1000)
    start = now // DAY_MS * DAY_MS + hour_utc * HOUR_MS
    while start + duration_s * 1000 > now - 10 * MINUTE_MS:
        start -= DAY_MS
    return start


def simulate(*, regions: tuple[str, ...], volume: float, seed: int, duration_s: float = 3600,
             scenario: tuple[str, ...] = (), hour_utc: int = 7) -> list[Event]:
    """Simulated events in delivery order, with their delivery times; 07:00 UTC is busy everywhere."""
    start = past_start(duration_s, hour_utc)
    config = SimConfig(start_ms=start, seed=seed, duration_s=duration_s, regions=regions, volume=volume,
                       scenarios=tuple(scenarios.parse(text, start, regions) for text in scenario))
    return list(Simulation(config))


def pairs(events: list[Event]) -> list[tuple[bytes, bytes]]:
    return [(key, value) for _, key, value in events]


def injected(value: bytes) -> bool:
    """True for the invalid events of the `malformed` scenario (undecodable, or a `~bad` or no event id)."""
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        return True
    event_id = event.get("event_id") if isinstance(event, dict) else None
    return not isinstance(event_id, str) or not event_id or "~bad" in event_id


# --- replay and records --------------------------------------------------------------------------

def replay(pipeline: Pipeline, tmp_path: Path, values: list[bytes]) -> tuple[dict[str, dict[str, Any]],
                                                                            list[dict[str, Any]]]:
    """`ccpulse replay` over these event values: records by key, and the dead letters."""
    events_file = tmp_path / f"replay-{len(values)}.jsonl"
    dlq_file = tmp_path / f"replay-{len(values)}.dlq.jsonl"
    events_file.write_bytes(b"".join(value + b"\n" for value in values))
    records = orjson.loads(pipeline.ccpulse("replay", str(events_file), "--dlq", str(dlq_file)))
    letters = [orjson.loads(line) for line in dlq_file.read_bytes().splitlines() if line.strip()]
    return {f"{r['region']}|{r['channel']}|{r['window']}": r for r in records}, letters


def records_diff(expected: dict[str, dict[str, Any]], actual: dict[str, dict[str, Any]], show: int = 8) -> str:
    """Empty when equal; else which keys are missing, extra, and which fields differ."""
    missing = sorted(expected.keys() - actual.keys())
    extra = sorted(actual.keys() - expected.keys())
    differing = {key: {name: (value, actual[key].get(name)) for name, value in expected[key].items()
                       if actual[key].get(name) != value}
                 for key in sorted(expected.keys() & actual.keys()) if expected[key] != actual[key]}
    if not (missing or extra or differing):
        return ""
    lines = [f"{len(expected)} records expected, {len(actual)} on the topic: {len(missing)} missing, "
             f"{len(extra)} extra, {len(differing)} differing (field: (replay, streaming))"]
    lines += [f"  missing {key}" for key in missing[:show]]
    lines += [f"  extra {key}" for key in extra[:show]]
    lines += [f"  differs {key}: {fields}" for key, fields in list(differing.items())[:show]]
    return "\n".join(lines)


def wait_for_records(pipeline: Pipeline, reader: TopicReader, expected: dict[str, dict[str, Any]],
                     timeout: float = RECORDS_TIMEOUT_S) -> None:
    """Wait until the last record per key on the metric topic is exactly `expected`."""
    try:
        wait_until(lambda: not records_diff(expected, reader.latest()), timeout,
                   f"the metric topic {reader.topic} converging to replay's records", interval=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{records_diff(expected, reader.latest())}\n{pipeline.logs()}") from None


# --- /metrics ------------------------------------------------------------------------------------

def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Samples of one series name in a /metrics text."""
    return [(sample.labels, sample.value) for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == name]


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(v for sample_labels, v in samples(text, name) if labels.items() <= sample_labels.items())


def served_regions(worker: Worker) -> set[str]:
    """Regions (and ALL) some series of the worker's /metrics is labelled with."""
    return {sample.labels["region"] for family in text_string_to_metric_families(worker.metrics())
            for sample in family.samples if "region" in sample.labels}


@pytest.fixture
def pipeline(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Pipeline]:
    """This test's own topics (4 partitions) on the session's broker, and no workers yet."""
    made = Pipeline(tmp_path, kafka_bootstrap, partitions=4)
    try:
        yield made
    finally:
        made.close()


# --- the tests -----------------------------------------------------------------------------------

def test_worker_serves_metrics_and_prometheus_scrapes_them(pipeline: Pipeline,
                                                            prometheus_stack: PrometheusStack) -> None:
    events = simulate(regions=REGIONS[:5], volume=0.1, seed=11, duration_s=1200, scenario=("duplicates:share=0.05",))
    values = [value for _, _, value in events]
    unique = {orjson.loads(v)["event_id"] for v in values}
    contacts_by_region = collections.Counter(e["region"] for e in map(orjson.loads, set(values))
                                             if e["type"] == "contact.started")
    assert len(unique) < len(values), "the simulation sent no duplicates"
    worker = pipeline.worker("w1").start()
    pipeline.send(pairs(events))

    def contacts_served(text: str) -> collections.Counter[str]:
        served: collections.Counter[str] = collections.Counter()
        for labels, count in samples(text, "ccpulse_contacts_total"):
            served[labels["region"]] += int(count)
        return served

    def counted(text: str) -> bool:  # stage two counts a moment after stage one accepts
        return (value(text, "ccpulse_events_total", result="accepted") == len(unique)
                and contacts_served(text) == contacts_by_region)

    try:
        text = wait_until(lambda: counted(t := worker.metrics()) and t, 60, f"{len(unique)} accepted events and "
                          f"{sum(contacts_by_region.values())} contacts counted on /metrics")
    except AssertionError as exc:
        text = worker.metrics()
        raise AssertionError(f"{exc}: accepted {value(text, 'ccpulse_events_total', result='accepted')}, contacts "
                             f"{dict(contacts_served(text))}, wanted {dict(contacts_by_region)}") from None
    assert value(text, "ccpulse_events_total", result="duplicate") == len(values) - len(unique)
    assert value(text, "ccpulse_events_total", result="rejected") == 0
    assert set(contacts_by_region) == set(REGIONS[:5])

    prometheus_stack.scrape([worker.address])
    try:
        selector = f'job="ccpulse",instance="{worker.address}"'
        scraped = wait_until(lambda: prometheus_stack.query(f'ccpulse_events_total{{{selector},result="accepted"}}'),
                             30, "Prometheus scraping the worker's accepted-events counter")
        assert float(scraped[0]["value"][1]) == len(unique)
        by_region = prometheus_stack.query(f"sum by (region) (ccpulse_contacts_total{{{selector}}})")
        assert {s["metric"]["region"]: float(s["value"][1]) for s in by_region} == contacts_by_region
    finally:
        prometheus_stack.scrape([])


def shuffled_hour(seed: int, volume: float = 0.25) -> list[Event]:
    """A simulated hour of 12 regions, late and duplicated deliveries, then shuffled as a whole."""
    events = simulate(regions=REGIONS, volume=volume, seed=seed,
                      scenario=("late:share=0.1,max=20m", "duplicates:share=0.05"))
    values = [value for _, _, value in events]
    assert len(set(values)) < len(values), "the simulation sent no duplicates"
    random.Random(seed).shuffle(events)
    return events


#: the pieces the equals-replay test sends its events in
SLICES = 6


def test_streaming_equals_replay(pipeline: Pipeline, tmp_path: Path) -> None:
    events = shuffled_hour(seed=21)
    expected, letters = replay(pipeline, tmp_path, [v for _, _, v in events])
    assert not letters and len(expected) > 300
    metrics = pipeline.reader("metrics")
    pipeline.worker("w1").start()
    # in slices, each sent once a round has published after the one before: rounds in a row republish
    for number in range(1, SLICES + 1):
        published = len(metrics.poll())
        pipeline.send(pairs(events[number - 1::SLICES]))
        if number < SLICES:
            wait_until(lambda published=published: len(metrics.poll()) > published, 60,
                       f"a round published after slice {number}")
    wait_for_records(pipeline, metrics, expected)
    # the spec's "at most once a second per key" (Kafka's timestamps are whole milliseconds)
    gaps = {key: min(b - a for a, b in itertools.pairwise(stamps))
            for key, stamps in metrics.stamps.items() if len(stamps) > 1}
    assert gaps, "no record key was published twice: the test shows nothing about the spacing"
    assert min(gaps.values()) >= 999, sorted(gaps.items(), key=lambda item: item[1])[:5]


#: a worker reads faster than the test's producer writes: the backlog it is stopped inside is
#: written while the worker is paused (SIGSTOP), and must be large enough to take it a while
BACKLOG_VOLUME = 10.0


def worker_inside_a_backlog(pipeline: Pipeline, metrics: TopicReader, events: list[Event], first: int,
                            last: int) -> tuple[Worker, float]:
    """A worker given `events[:first]` and, once it has published, `events[first:last]` at once
    (written while it is paused); returned as soon as it is a twentieth into that backlog, with the
    events it had handled."""
    worker = pipeline.worker("w1").start()
    pipeline.send(pairs(events[:first]))
    wait_until(metrics.poll, 60, "the first metric records")
    assert worker.process is not None
    worker.process.send_signal(signal.SIGSTOP)
    try:
        pipeline.send(pairs(events[first:last]))
    finally:
        worker.process.send_signal(signal.SIGCONT)
    inside = first + (last - first) // 20
    handled = wait_until(lambda: (n := value(worker.metrics(), "ccpulse_events_total")) >= inside and n, 60,
                         "the worker inside the backlog", interval=0.02)
    return worker, handled


def test_crash_and_restart_gives_the_same_records(pipeline: Pipeline, tmp_path: Path) -> None:
    """SIGKILL while the worker is busy with a backlog: whatever the crash cut (state written but
    not its facts, facts but not the offset commit), the final records equal replay's."""
    events = shuffled_hour(seed=22, volume=BACKLOG_VOLUME)
    expected, _ = replay(pipeline, tmp_path, [v for _, _, v in events])
    metrics = pipeline.reader("metrics")
    third = len(events) // 3
    worker, handled = worker_inside_a_backlog(pipeline, metrics, events, third, 2 * third)
    worker.kill()
    assert handled < 2 * third, "the worker was not killed in the middle of a backlog"
    pipeline.send(pairs(events[2 * third:]))
    worker.start()
    wait_for_records(pipeline, metrics, expected)


def test_sigterm_in_a_backlog_stops_cleanly_and_a_restart_loses_nothing(pipeline: Pipeline, tmp_path: Path) -> None:
    """A rolling restart on a busy morning: SIGTERM while facts, ticks and records are in flight
    must end the worker with exit 0 and no crash logged, and the restarted worker must finish
    the stream with replay's records."""
    events = shuffled_hour(seed=24, volume=BACKLOG_VOLUME)
    expected, _ = replay(pipeline, tmp_path, [v for _, _, v in events])
    metrics = pipeline.reader("metrics")
    worker, handled = worker_inside_a_backlog(pipeline, metrics, events, len(events) // 2, len(events))
    assert worker.stop() == 0, worker.log_tail()
    assert handled < len(events), "the worker was not stopped in the middle of a backlog"
    log = worker.log_path.read_text(errors="replace")
    assert "Crashed" not in log and "Traceback" not in log, worker.log_tail()
    worker.start()
    wait_for_records(pipeline, metrics, expected)


def test_two_workers_split_the_regions_through_a_standstill_and_one_takes_over(pipeline: Pipeline,
                                                                               tmp_path: Path) -> None:
    events = shuffled_hour(seed=23)
    cuts = [len(events) * 2 // 5, len(events) * 3 // 5, len(events) * 4 // 5, len(events)]
    expected = [replay(pipeline, tmp_path, [v for _, _, v in events[:cut]])[0] for cut in cuts]
    regions = {key.split("|")[0] for key in expected[-1]}
    metrics = pipeline.reader("metrics")
    first = pipeline.worker("w1").start()
    pipeline.send(pairs(events[:cuts[0]]))
    wait_for_records(pipeline, metrics, expected[0])

    # scale out: a second worker joins the running pipeline and takes over some partitions
    second = pipeline.worker("w2").start()

    def split() -> tuple[set[str], set[str]] | None:
        """Every region served by exactly one of them. A region leaves the first worker when its
        rebalance handler runs and reaches the newcomer once it has read the region's facts again;
        the two need not happen in that order to the millisecond (either event loop may be busy),
        so a passing overlap is allowed and only one that lasts to the deadline fails. The
        newcomer's page is read first, which makes a momentary overlap rarer still."""
        two = served_regions(second)
        one = served_regions(first)
        return (one, two) if one and two and one | two == regions and not one & two else None

    def wait_for_split(what: str, timeout_s: float) -> tuple[set[str], set[str]]:
        try:
            return wait_until(split, timeout_s, f"{what}, each of {sorted(regions)} by one of them")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {first.name} serves {sorted(served_regions(first))}, {second.name} "
                                 f"serves {sorted(served_regions(second))}\n{pipeline.logs()}") from None

    one, two = wait_for_split("both workers serving regions", 60)
    pipeline.send(pairs(events[cuts[0]:cuts[1]]))
    wait_for_records(pipeline, metrics, expected[1])
    assert (served_regions(first), served_regions(second)) == (one, two)
    log_text = first.log_path.read_text(errors="replace")
    assert "publishing held until the new assignment" in log_text and "publishing resumed after" in log_text, \
        "the first worker stops publishing while its partitions are handed over, then resumes"

    # a standstill: the first worker's process paused until its groups, its sessions (10 s) run out,
    # have given every partition to the second; resumed, it notices, learns it was expelled, and the
    # two split the regions again
    assert first.process is not None
    first.process.send_signal(signal.SIGSTOP)
    try:
        wait_until(lambda: served_regions(second) == regions, 90,
                   f"{second.name} serving every region while {first.name} is paused")
    finally:
        first.process.send_signal(signal.SIGCONT)
    wait_for_split("both workers serving regions again after the standstill", 90)
    assert "the event loop stood still" in first.log_path.read_text(errors="replace"), \
        "the first worker notices its standstill and holds its sends for the group's word"
    pipeline.send(pairs(events[cuts[1]:cuts[2]]))
    wait_for_records(pipeline, metrics, expected[2])

    # scale in: the survivor takes every region over and the records go on
    assert first.stop() == 0
    try:
        wait_until(lambda: served_regions(second) == regions, 60, f"{second.name} serving every region after "
                                                                  f"{first.name} stopped")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: it serves {sorted(served_regions(second))}\n{pipeline.logs()}") from None
    pipeline.send(pairs(events[cuts[2]:]))
    wait_for_records(pipeline, metrics, expected[3])
    assert served_regions(second) == regions
    assert samples(second.metrics(), "ccpulse_stalled_partitions") == [({}, 0.0)], "the survivor reads every partition"
    for worker in (first, second):
        holes = [line for line in worker.log_path.read_text(errors="replace").splitlines() if "never delivered" in line]
        assert not holes, f"{worker.name} missed facts in a rebalance: {holes}"


def test_bad_input_goes_to_the_dead_letter_topic(pipeline: Pipeline, tmp_path: Path) -> None:
    events = simulate(regions=REGIONS[:6], volume=0.15, seed=31, duration_s=1800, scenario=("malformed:share=0.05",))
    bad = [(key, v) for _, key, v in events if injected(v)]
    good = [(key, v) for _, key, v in events if not injected(v)]
    last_ts = max(parse_rfc3339(orjson.loads(v)["ts"]) for _, v in good)
    stale = dict(orjson.loads(good[0][1]), event_id="stale-1", ts=format_ms(last_ts - 27 * HOUR_MS))
    too_late = (good[0][0], orjson.dumps(stale))
    # the first nine tenths of the stream, then the stale event, then the rest. Not split between
    # an event and its injected conflicting twin, which follows it: a stream counts whichever of
    # the two arrives first, replay the first in event time (ties by event id), and these agree
    # only while the twin arrives second.
    cut = len(events) * 9 // 10
    while injected(events[cut][2]):
        cut += 1
    first_part, rest = pairs(events[:cut]), pairs(events[cut:])
    expected, letters = replay(pipeline, tmp_path, [v for _, _, v in events])
    wanted = collections.Counter(letter["reason"] for letter in letters) + collections.Counter(too_late=1)
    assert set(wanted) == {"malformed", "missing_field", "invalid_field", "unknown_type", "unknown_region",
                           "future_timestamp", "conflict", "too_late"}
    assert len(letters) == len(bad)

    dlq, metrics = pipeline.reader("events.dlq"), pipeline.reader("metrics")
    worker = pipeline.worker("w1").start()
    pipeline.send(first_part)
    # the first part handled, so the stale event arrives behind the watermark
    wait_until(lambda: value(worker.metrics(), "ccpulse_events_total") == len(first_part), 60,
               f"the worker handling the first {len(first_part)} events")
    pipeline.send([too_late])
    pipeline.send(rest)
    wait_for_records(pipeline, metrics, expected)

    wait_until(lambda: len(dlq.poll()) >= len(bad) + 1, 30, f"{len(bad) + 1} dead letters")
    on_topic = [(key, orjson.loads(v)) for key, v in dlq.poll()]
    assert collections.Counter(letter["reason"] for _, letter in on_topic) == wanted
    sent = collections.Counter((key, v.decode("utf-8", "backslashreplace")) for key, v in [*bad, too_late])
    assert collections.Counter((key, letter["raw"]) for key, letter in on_topic) == sent
    replayed = collections.Counter((x["reason"], x["field"], x["raw"]) for x in letters)
    assert collections.Counter((x["reason"], x["field"], x["raw"]) for _, x in on_topic
                               if x["reason"] != "too_late") == replayed

    text = worker.metrics()
    assert {labels["reason"]: v for labels, v in samples(text, "ccpulse_events_rejected_total") if v} == wanted
    assert value(text, "ccpulse_events_total", result="rejected") == sum(wanted.values())
    assert value(text, "ccpulse_events_total", result="accepted") == len(good)


def test_voice_collapse_breaches_and_recovers(pipeline: Pipeline) -> None:
    # 21:00 local in Chelyabinsk: a calm evening (voice service level about 0.97) until the collapse
    events = simulate(regions=("RU-CHE",), volume=5, seed=41, duration_s=4500, hour_utc=16,
                      scenario=("voice-collapse:region=RU-CHE,start=+10m,duration=25m,factor=10",))
    middle = events[0][0] + 30 * MINUTE_MS
    alerts = pipeline.reader("alerts")
    pipeline.worker("w1").start()

    def che_voice() -> list[dict[str, Any]]:
        return [a for a in alerts.values() if (a["region"], a["channel"], a["metric"])
                == ("RU-CHE", "voice", "service_level")]

    pipeline.send(pairs([e for e in events if e[0] < middle]))
    breach = wait_until(che_voice, 60, f"a breach of RU-CHE voice service_level\n{pipeline.logs()}")[0]
    assert breach["state"] == "breach" and breach["window"] == "15m"
    assert breach["value"] < breach["target"] == 0.9
    pipeline.send(pairs([e for e in events if e[0] >= middle]))
    states = wait_until(lambda: (found := che_voice())[-1]["state"] == "recovered" and found, 60,
                        f"RU-CHE voice service_level recovering\n{pipeline.logs()}")
    assert [a["state"] for a in states] == ["breach", "recovered"] * (len(states) // 2)
    assert states[-1]["value"] >= 0.9
    assert parse_rfc3339(states[-1]["as_of"]) >= events[0][0] + 50 * MINUTE_MS


def test_a_breach_that_recovers_while_no_worker_runs_is_published_as_recovered(pipeline: Pipeline) -> None:
    """The breach state lives with the worker that judged it; the next one reads the open breaches
    back from the alerts topic, so a recovery during the handover is not lost downstream."""
    events = simulate(regions=("RU-CHE",), volume=5, seed=41, duration_s=4500, hour_utc=16,
                      scenario=("voice-collapse:region=RU-CHE,start=+10m,duration=25m,factor=10",))
    middle = events[0][0] + 30 * MINUTE_MS
    alerts = pipeline.reader("alerts")

    def che_voice() -> list[dict[str, Any]]:
        return [a for a in alerts.values() if (a["region"], a["channel"], a["metric"])
                == ("RU-CHE", "voice", "service_level")]

    first = pipeline.worker("w1").start()
    pipeline.send(pairs([e for e in events if e[0] < middle]))
    wait_until(che_voice, 60, f"a breach of RU-CHE voice service_level\n{pipeline.logs()}")
    assert first.stop() == 0
    assert [a["state"] for a in che_voice()] == ["breach"]
    pipeline.send(pairs([e for e in events if e[0] >= middle]))  # the queue recovers while no worker runs
    pipeline.worker("w2").start()
    states = wait_until(lambda: (found := che_voice())[-1]["state"] == "recovered" and found, 90,
                        f"RU-CHE voice service_level published as recovered by the next worker\n{pipeline.logs()}")
    assert [a["state"] for a in states] == ["breach", "recovered"]
    assert states[-1]["value"] >= 0.9


def test_a_breach_another_worker_delivers_after_the_read_back_is_answered_as_recovered(pipeline: Pipeline) -> None:
    """A worker expelled while its event loop stood still may deliver a transition it had handed to
    its producer after the region's new owner read the alerts topic back. The owner follows the
    topic: a breach another process writes there for a region it finds good is answered."""
    events = simulate(regions=("RU-CHE",), volume=5, seed=41, duration_s=4500, hour_utc=16)  # a calm evening
    middle = events[0][0] + 30 * MINUTE_MS
    alerts, metrics = pipeline.reader("alerts"), pipeline.reader("metrics")

    def che_voice() -> list[dict[str, Any]]:
        return [a for a in alerts.values() if (a["region"], a["channel"], a["metric"])
                == ("RU-CHE", "voice", "service_level")]

    worker = pipeline.worker("w1").start()
    pipeline.send(pairs([e for e in events if e[0] < middle]))
    # a record is published only after its partition's assignment, and so the alerts read-back, is done
    wait_until(lambda: "RU-CHE|voice|15m" in metrics.latest(), 60, f"RU-CHE's records\n{pipeline.logs()}")
    assert che_voice() == []
    foreign = {"schema": "ccpulse.alert/v1", "state": "breach", "region": "RU-CHE", "channel": "voice",
               "metric": "service_level", "value": 0.5, "target": 0.9, "window": "15m", "as_of": format_ms(middle)}
    pipeline.send_to(pipeline.topic("alerts"), [(b"RU-CHE|voice", orjson.dumps(foreign))])
    wait_until(lambda: "breach of RU-CHE/voice service_level sent by another worker" in worker.log_tail(200), 30,
               f"the worker taking the other worker's breach\n{pipeline.logs()}")
    pipeline.send(pairs([e for e in events if e[0] >= middle]))  # new facts: the region is judged again
    states = wait_until(lambda: (found := che_voice())[-1]["state"] == "recovered" and found, 60,
                        f"RU-CHE voice service_level answered as recovered\n{pipeline.logs()}")
    assert states[0] == foreign
    assert [a["state"] for a in states] == ["breach", "recovered"]
    assert states[-1]["value"] >= 0.9
    headers = [names for (_, value), names in zip(alerts.poll(), alerts.header_names, strict=True)
               if orjson.loads(value) in states]
    assert headers == [set(), {SOURCE_HEADER}], "the worker's own transitions carry its header"


@pytest.mark.parametrize("stage", ["events", "facts"])
def test_a_failing_stage_stops_the_worker_with_an_error(pipeline: Pipeline, stage: str) -> None:
    """A bug in stage one or stage two must not leave a live process that serves stale numbers and
    consumes nothing: the worker exits non-zero, so its supervisor restarts it and someone is told.
    (A facts message, the first that stage two handles, comes from stage one handling an event.)"""
    script = Path(__file__).with_name("poisoned_worker.py")
    worker = pipeline.worker("poisoned", command=(sys.executable, str(script), stage)).start()
    trigger = {"event_id": "e-1", "type": "contact.started", "ts": now_ms(), "contact_id": "c-1",
               "region": "RU-MOW", "channel": "voice"}
    pipeline.send([(b"c-1", orjson.dumps(trigger))])
    wait_until(lambda: not worker.running, 60, f"the worker to exit after its {stage} stage failed")
    assert worker.process is not None and worker.process.returncode != 0, worker.log_tail()
    assert "poisoned by b'" in worker.log_tail(200), worker.log_tail()
