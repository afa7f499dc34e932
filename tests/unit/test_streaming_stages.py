"""The streaming stages wired by hand, without Kafka: they must add no arithmetic of their own.

Events go through TrackingStage (as stage one would see them per partition), its fact messages
through RegionalStage (per facts partition), and the rollup upserts through CountryRollup; the
records published at the end must equal what the in-process engine computes from the same events.
Stage one's facts are taken in batches (at every tick here), as the worker sends them. The
Kafka-backed version of this is tests/integration/test_streaming*.py.
"""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from aiokafka.structs import ConsumerRecord

from streams import config
from streams.core.engine import Engine
from streams.core.records import build_records
from streams.core.timefmt import now_ms
from streams.simulate.generator import SimConfig, Simulation
from streams.simulate.scenarios import Duplicates, Late, Malformed
from streams.streaming import regional as regional_module
from streams.streaming.partitioner import partition_of
from streams.streaming.regional import RegionalStage, record_key
from streams.streaming.rollup import CountryRollup
from streams.streaming.tracking import TrackingStage, encode_tick

PARTITIONS = 4
REGIONS = ("RU-MOW", "RU-KGD", "RU-KAM", "RU-CHE", "RU-SPE")


def simulated(seed: int) -> list[tuple[bytes, bytes]]:
    start = now_ms() - 3 * 3_600_000
    sim = SimConfig(start_ms=start, seed=seed, duration_s=2 * 3600, regions=REGIONS, volume=3.0)
    return [(key, value) for _, key, value in Simulation(sim)]


ACCEPTED = ("accepted", None)


def messages(values: list[bytes], first_offset: int = 0, arrived_ms: int = 0) -> list[ConsumerRecord]:
    """Events as stage one reads them from one partition, from `first_offset` on."""
    return [ConsumerRecord("events", 0, offset, arrived_ms, 0, None, value, None, -1, len(value), [])
            for offset, value in enumerate(values, start=first_offset)]


def handle(stage: TrackingStage, values: list[bytes], first_offset: int = 0,
           partition: int = 0) -> list[tuple[str, str | None]]:
    """The events handled as one fetch: each one's (result, reason), the accepted ones included."""
    fetch = messages(values, first_offset)
    refused = {message.offset: outcome for message, outcome in stage.handle(partition, fetch)}
    return [(outcome.result, outcome.reason) if (outcome := refused.get(message.offset)) else ACCEPTED
            for message in fetch]


class Pipeline:
    """Stage one -> facts partitions -> stage two -> rollup, delivering messages in order."""

    def __init__(self) -> None:
        settings = config.load(env={})
        self.tracking = TrackingStage(settings, PARTITIONS)
        self.regional = RegionalStage(settings)
        self.rollup = CountryRollup(settings)
        self.facts: list[list[bytes]] = [[] for _ in range(PARTITIONS)]
        self.applied = [0] * PARTITIONS
        self.rollup_log: list[bytes] = []
        self.published: dict[str, dict] = {}
        self.offsets = [0] * PARTITIONS

    def send_event(self, key: bytes, value: bytes) -> None:
        partition = partition_of(key, PARTITIONS)
        handle(self.tracking, [value], self.offsets[partition], partition)
        self.offsets[partition] += 1

    def send_facts(self) -> None:
        for partition, message in self.tracking.take_facts():
            self.facts[partition].append(message)

    def tick(self) -> None:
        """What the worker does about once a second: batched facts, watermark to every facts partition, then publish."""
        self.send_facts()
        if self.tracking.watermark.value is not None:
            for log in self.facts:
                log.append(encode_tick(self.tracking.watermark.value))
        for partition, log in enumerate(self.facts):
            for offset in range(self.applied[partition], len(log)):
                self.regional.handle(log[offset], partition, offset)
            self.applied[partition] = len(log)
        publication = self.regional.collect(dict.fromkeys(range(PARTITIONS), True))
        start = len(self.rollup_log)
        self.rollup_log.extend(value for _, value in publication.rollup)
        for offset in range(start, len(self.rollup_log)):
            self.rollup.handle(self.rollup_log[offset], offset)
        for record in publication.records + self.rollup.collect():
            self.published[record_key(record)] = record


def engine_records(events: list[tuple[bytes, bytes]]) -> dict[str, dict]:
    engine = Engine(config.load(env={}))
    for _, value in events:
        engine.process_raw(value)
    return {record_key(r): r for r in engine.records()}


def test_streaming_stages_publish_exactly_the_engine_records() -> None:
    events = simulated(seed=3)
    pipeline = Pipeline()
    for index, (key, value) in enumerate(events):
        pipeline.send_event(key, value)
        if index % 500 == 0:
            pipeline.tick()
    pipeline.tick()
    expected = engine_records(events)
    assert len(expected) > 50
    assert pipeline.published.keys() == expected.keys()
    differing = [key for key in expected if pipeline.published[key] != expected[key]]
    assert not differing, f"{len(differing)} records differ, e.g. {differing[:3]}"


def test_facts_sent_twice_by_stage_one_are_counted_once() -> None:
    """After a crash stage one may send the facts of the same source position again."""
    events = simulated(seed=4)
    pipeline = Pipeline()
    for key, value in events:
        pipeline.send_event(key, value)
    for log in pipeline.facts:  # every fact message delivered twice, as after a replayed batch
        log[:] = [message for message in log for _ in (0, 1)]
    pipeline.tick()
    assert pipeline.published == engine_records(events)


def test_a_rebuilt_partition_gives_the_same_records() -> None:
    """A facts partition read again from its start (after an assignment) rebuilds the same state."""
    events = simulated(seed=5)
    pipeline = Pipeline()
    for key, value in events:
        pipeline.send_event(key, value)
    pipeline.tick()
    before = dict(pipeline.published)
    lost = pipeline.regional.revoke([1])
    assert lost, "partition 1 should have owned some regions"
    pipeline.applied[1] = 0
    pipeline.regional.partition(1).published.clear()
    pipeline.tick()
    assert pipeline.published == before


def test_shuffled_events_within_the_horizon_give_the_same_records() -> None:
    events = simulated(seed=6)
    shuffled = events[:]
    random.Random(1).shuffle(shuffled)
    pipeline = Pipeline()
    for key, value in shuffled:
        pipeline.send_event(key, value)
    pipeline.tick()
    assert pipeline.published == engine_records(events)


def test_fact_messages_carry_the_source_position_of_each_entry() -> None:
    events = simulated(seed=7)[:40]
    tracking = TrackingStage(config.load(env={}), PARTITIONS)
    for offset, (_, value) in enumerate(events):
        handle(tracking, [value], offset, offset % 2)
    messages = tracking.take_facts()
    assert tracking.take_facts() == []
    entries = [(number, entry) for number, value in messages for entry in orjson.loads(value)["e"]]
    assert {orjson.loads(value)["w"] for _, value in messages} == {tracking.watermark.value}
    for number, (source, offset, _, facts) in entries:
        assert source == offset % 2
        assert {partition_of(fact[1].encode(), PARTITIONS) for fact in facts} == {number}
    positions = [(source, offset, index) for _, (source, offset, index, _) in entries]
    assert len(positions) == len(set(positions)) >= 20
    for _, value in messages:  # within a message, each source partition's entries keep their order
        for source in (0, 1):
            positions = [(e[1], e[2]) for e in orjson.loads(value)["e"] if e[0] == source]
            assert positions == sorted(positions)


def test_an_event_with_facts_of_two_regions_makes_one_entry_per_region_in_region_order() -> None:
    """A visit left in one region and then (later in the log) entered in another: the entry's facts
    are the visit in the first region and the offer in the second, filed apart, indexed by region."""
    tracking = TrackingStage(config.load(env={}), PARTITIONS)
    now = now_ms()
    common = {"contact_id": "c-9", "channel": "voice"}
    left = {"event_id": "c-9-l", "type": "queue.left", "ts": now - 60_000, "region": "RU-MOW",
            "reason": "answered", **common}
    entered = {"event_id": "c-9-e", "type": "queue.entered", "ts": now - 90_000, "region": "RU-KGD", **common}
    assert handle(tracking, [orjson.dumps(left), orjson.dumps(entered)]) == [ACCEPTED] * 2
    entries = sorted((entry[1], entry[2], number, [fact[:2] for fact in entry[3]])
                     for number, value in tracking.take_facts() for entry in orjson.loads(value)["e"])
    assert entries == [  # the leave alone, with no wait known, counts nothing yet
        (1, 0, partition_of(b"RU-KGD", PARTITIONS), [["offered", "RU-KGD"]]),
        (1, 1, partition_of(b"RU-MOW", PARTITIONS), [["visit", "RU-MOW"]]),
    ]
    assert tracking.take_accepted() == [left["ts"], entered["ts"]]
    assert tracking.take_accepted() == []


def test_only_accepted_events_leave_their_time_for_the_lag_histogram() -> None:
    tracking = TrackingStage(config.load(env={}), PARTITIONS)
    started, _ = contact_events("c-8", resolved=True)
    refused = tracking.handle(0, messages([started, started, b"{"]))
    assert [(message.offset, outcome.result, outcome.reason) for message, outcome in refused] == [
        (1, "duplicate", None), (2, "rejected", "malformed")]
    assert refused[1][1].dead_letter is not None
    assert tracking.take_accepted() == [orjson.loads(started)["ts"]]


def test_a_message_mixing_new_and_already_applied_entries_applies_only_the_new() -> None:
    """After a restart, stage one's first batch can hold facts resent from before the crash
    beside new ones; stage two must skip the first, entry by entry, and apply the rest."""
    events = simulated(seed=9)
    half = len(events) // 2
    pipeline = Pipeline()
    for key, value in events[:half]:
        pipeline.send_event(key, value)
    pipeline.tick()
    resent = Pipeline()  # the same events handled again from the start, with the second half
    resent.facts = pipeline.facts
    resent.applied = pipeline.applied
    resent.regional = pipeline.regional
    resent.rollup = pipeline.rollup
    resent.rollup_log = pipeline.rollup_log
    resent.published = pipeline.published
    for key, value in events:
        resent.send_event(key, value)
    resent.tick()
    assert resent.published == engine_records(events)


def test_long_open_tickets_survive_a_rebuild_from_the_facts_retention() -> None:
    """The facts topic keeps a few days; a ticket open for longer must still count as open (and
    past 72 h) after stage two rebuilds a partition from what the topic still holds."""
    now = now_ms()
    created = now - 4 * 86_400_000
    ticket = {"event_id": "t-1", "type": "ticket.created", "ts": created, "ticket_id": "T-1",
              "region": "RU-KAM", "channel": "email"}
    later = {"event_id": "c-1", "type": "contact.started", "ts": now - 60_000, "contact_id": "c-1",
             "region": "RU-KAM", "channel": "voice"}
    pipeline = Pipeline()
    for event in (ticket, later):
        key = event.get("ticket_id") or event["contact_id"]
        pipeline.send_event(key.encode(), orjson.dumps(event))
    partition = partition_of(b"RU-KAM", PARTITIONS)
    log = pipeline.facts[partition]
    log.extend(value for _, value in pipeline.tracking.open_ticket_messages())
    del log[0]  # the ticket's creation has left the topic's retention; its restatement has not
    pipeline.regional.revoke([partition])
    pipeline.applied[partition] = 0
    pipeline.tick()
    record = pipeline.published["RU-KAM|email|15m"]
    assert (record["tickets_open"], record["tickets_open_over_72h"]) == (1, 1)
    assert record["tickets_created"] == 0  # a restatement counts nothing


def entries_of(messages: list[tuple[int, bytes]]) -> list[tuple[int, list]]:
    """(facts partition, entry) of every entry in fact messages, in order."""
    return [(number, entry) for number, value in messages for entry in orjson.loads(value).get("e", [])]


def test_a_stage_rebuilt_up_to_the_commit_sends_again_exactly_what_followed_it() -> None:
    """After a crash the new owner reads the partition again up to the committed offset for its state
    only, then handles the rest: that must produce the very entries (with their source positions),
    results and dead letters the first owner produced past the commit."""
    settings = config.load(env={})
    start = now_ms() - 2 * 3_600_000
    scenarios = (Duplicates(0.05), Malformed(0.03), Late(0.05, 600_000))
    sim = SimConfig(start_ms=start, seed=8, count=3000, regions=REGIONS, scenarios=scenarios)
    events = [value for _, _, value in Simulation(sim)]
    arrival = now_ms()
    first = TrackingStage(settings, 1)
    outcomes = handle(first, events)
    committed = len(events) * 2 // 3
    sent = [(number, entry) for number, entry in entries_of(first.take_facts()) if entry[1] >= committed]
    assert sent
    rebuilt = TrackingStage(settings, 1)
    rebuilt.rebuild(0, messages(events[:committed], arrived_ms=arrival))
    assert rebuilt.take_facts() == []  # rebuilding sends nothing
    again = handle(rebuilt, events[committed:], committed)
    assert entries_of(rebuilt.take_facts()) == sent
    assert again == outcomes[committed:]
    assert {result for result, _ in outcomes[:committed]} >= {"accepted", "duplicate", "rejected"}
    assert rebuilt.watermark.value == first.watermark.value


def test_a_conflicting_event_handled_again_past_the_commit_is_dead_lettered_again() -> None:
    settings = config.load(env={})
    started, ended = contact_events("c-7", resolved=True)
    _, other_end = contact_events("c-7", resolved=False, tag="x")
    first = TrackingStage(settings, 1)
    assert handle(first, [started, ended]) == [ACCEPTED] * 2
    assert handle(first, [other_end], 2) == [("rejected", "conflict")]
    assert handle(first, [other_end], 3) == [("duplicate", None)]
    rebuilt = TrackingStage(settings, 1)
    rebuilt.rebuild(0, messages([started, ended], arrived_ms=now_ms()))
    assert handle(rebuilt, [other_end], 2) == [("rejected", "conflict")]


def test_a_rebuild_leaves_the_watermark_where_handling_the_same_events_left_it() -> None:
    """A duplicate moves nothing, not even when its copy carries a later time: handled or read again,
    the watermark (and with it what is too late) is the same."""
    settings = config.load(env={})
    first = orjson.loads(contact_events("c-9", resolved=True)[0])
    first["ts"] -= 2 * 3_600_000
    events = [orjson.dumps(first), orjson.dumps({**first, "ts": first["ts"] + 3_600_000})]
    handled = TrackingStage(settings, 1)
    assert handle(handled, events) == [ACCEPTED, ("duplicate", None)]
    rebuilt = TrackingStage(settings, 1)
    rebuilt.rebuild(0, messages(events, arrived_ms=now_ms()))
    assert rebuilt.watermark.value == handled.watermark.value == first["ts"]


def test_a_rebuild_judges_future_timestamps_by_the_time_the_event_arrived() -> None:
    """An event stamped 10 minutes after it reached the broker was rejected then; read again an hour
    later it must still be left out of the state, so its later copy is accepted as it was."""
    settings = config.load(env={})
    arrived = now_ms() - 3_600_000
    ahead = orjson.loads(contact_events("c-5", resolved=True)[0])
    ahead["ts"] = arrived + 600_000
    raw = orjson.dumps(ahead)
    rebuilt = TrackingStage(settings, 1)
    rebuilt.rebuild(0, messages([raw], arrived_ms=arrived))
    assert handle(rebuilt, [raw], 1) == [ACCEPTED]
    accepted = TrackingStage(settings, 1)
    accepted.rebuild(0, messages([raw], arrived_ms=now_ms()))
    assert handle(accepted, [raw], 1) == [("duplicate", None)]


def contact_events(contact: str, *, resolved: bool, tag: str = "") -> tuple[bytes, bytes]:
    """A contact's start and end, as raw events."""
    now = now_ms()
    common = {"contact_id": contact, "region": "RU-MOW", "channel": "chat"}
    started = {"event_id": f"{contact}-s{tag}", "type": "contact.started", "ts": now - 120_000, **common}
    ended = {"event_id": f"{contact}-e{tag}", "type": "contact.ended", "ts": now - 60_000, "resolved": resolved,
             "handled_by": "agent", **common}
    return orjson.dumps(started), orjson.dumps(ended)


def test_offsets_missing_from_a_facts_partition_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    """Faust can drop fetched messages in a rebalance; a hole in the offsets is how stage two sees it."""
    pipeline = Pipeline()
    for key, value in simulated(seed=5)[:300]:
        pipeline.send_event(key, value)
    pipeline.send_facts()
    partition, log = next((number, log) for number, log in enumerate(pipeline.facts) if log)
    log.extend(encode_tick(pipeline.tracking.watermark.value) for _ in range(4))
    regional = pipeline.regional
    for offset in (0, 1, 1, 4):  # a redelivery is no hole; 2 and 3 are missing
        regional.handle(log[offset], partition, offset)
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"facts partition {partition}: offsets 2 to 3 were never delivered; the records of its regions miss "
        "their facts until the partition is rebuilt"]


def test_a_partition_publishes_once_it_has_caught_up_and_from_then_on() -> None:
    """Records of a partition being rebuilt are held back until it reaches its end once; after
    that, a round that finds it a message or two behind (a steady load) still publishes it."""
    events = simulated(seed=8)
    pipeline = Pipeline()
    for key, value in events:
        pipeline.send_event(key, value)
    pipeline.tick()
    regional = pipeline.regional
    regions_of = {number: state.regions for number, state in regional.partitions.items()}

    def regions_published(caught_up: dict[int, bool]) -> set[str]:
        for state in regional.partitions.values():
            state.published.clear()  # so every record of a partition built counts as changed
            state.built_as_of = None  # and is built: nothing changed since the last round
        return {record["region"] for record in regional.collect(caught_up).records}

    for state in regional.partitions.values():
        state.rebuilt = False  # as if just assigned, with the state read so far
    published = regions_published({number: number != 1 for number in range(PARTITIONS)})
    assert published and not published & regions_of[1]
    assert regions_published(dict.fromkeys(range(PARTITIONS), False)) == published
    assert regions_published({1: True}) == published | regions_of[1]


def test_a_round_builds_only_the_partitions_whose_facts_or_watermark_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    """An idle worker built every record every round to find none changed; a partition is built
    again only when a fact reached it or the watermark moved, and the records stay the engine's."""
    built: list[set[str]] = []  # the regions of each build

    def counting_build(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        records = build_records(*args, **kwargs)
        built.append({record["region"] for record in records})
        return records

    monkeypatch.setattr(regional_module, "build_records", counting_build)
    events = simulated(seed=9)
    pipeline = Pipeline()
    for key, value in events:
        pipeline.send_event(key, value)
    pipeline.tick()
    assert len(built) == len(pipeline.regional.partitions) > 1

    built.clear()
    pipeline.tick()  # nothing new: the same watermark, no facts
    assert built == []

    middle = orjson.loads(events[len(events) // 2][1])  # a new contact's start, behind the watermark
    late = orjson.dumps({"event_id": "late-1", "type": "contact.started", "ts": middle["ts"],
                         "contact_id": "late-contact", "region": middle["region"], "channel": middle["channel"]})
    pipeline.send_event(b"late-contact", late)
    pipeline.tick()  # one fact of one region: only its partition is built
    assert len(built) == 1 and middle["region"] in built[0]
    assert pipeline.published == engine_records([*events, (b"late-contact", late)])


def test_a_region_whose_partition_left_and_came_back_is_judged_afresh_for_breaches() -> None:
    """While a facts partition was elsewhere, its new owner judged its regions (and may have published
    their recovery): back here, a region still in breach is published as a breach again."""
    now = now_ms()
    settings = config.load(env={})
    tracking, regional = TrackingStage(settings, PARTITIONS), RegionalStage(settings)
    slow = [orjson.dumps({"event_id": f"v{i}", "type": "queue.left", "ts": now - 60_000, "contact_id": f"v{i}",
                          "region": "RU-MOW", "channel": "voice", "reason": "answered", "wait_s": 100})
            for i in range(settings.pipeline.min_volume)]
    handle(tracking, slow)
    [(partition, facts)] = tracking.take_facts()
    log = [facts, encode_tick(tracking.watermark.value)]

    def read_and_judge() -> list[tuple[str, str, str]]:
        for offset, message in enumerate(log):
            regional.handle(message, partition, offset)
        return [(a["state"], a["region"], a["metric"]) for a in regional.collect({partition: True}).alerts]

    assert read_and_judge() == [("breach", "RU-MOW", "service_level")]
    assert regional.revoke([partition]) == {"RU-MOW"}
    assert read_and_judge() == [("breach", "RU-MOW", "service_level")]
