"""The worker's Prometheus series: each fact moves exactly its series, gauges follow records, regions can go."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from helpers import require_tool
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams.config import Settings, load
from streams.core import facts as F
from streams.core.events import REASONS
from streams.core.timefmt import DAY_MS
from streams.exposition import Exposition

MOW, SPE = "RU-MOW", "RU-SPE"
T0 = 1_795_000_000_000

Key = tuple[str, frozenset[tuple[str, str]]]


def samples(expo: Exposition) -> dict[Key, float]:
    """Every sample of the exposition, keyed by sample name and label set."""
    text = expo.exposition().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def key(name: str, **labels: str) -> Key:
    return name, frozenset(labels.items())


def rc(name: str, region: str = MOW, channel: str = "voice", **extra: str) -> Key:
    return key(name, region=region, channel=channel, **extra)


def moved(before: dict[Key, float], after: dict[Key, float]) -> dict[Key, float]:
    """Samples whose value changed (a new sample counts from 0), histogram buckets left out."""
    return {k: after[k] - before.get(k, 0.0) for k in after
            if after[k] != before.get(k, 0.0) and not k[0].endswith("_bucket")}


@pytest.fixture
def expo() -> Exposition:
    return Exposition(Settings())


def fact(kind: str, *payload: Any, region: str = MOW, channel: str = "voice") -> F.Fact:
    return (kind, region, channel, T0, *payload)


FACT_CASES: list[tuple[str, F.Fact, dict[Key, float]]] = [
    ("contact", fact(F.CONTACT), {rc("ccpulse_contacts_total"): 1}),
    ("offered", fact(F.OFFERED, "c1#1", True), {rc("ccpulse_queue_offered_total"): 1}),
    ("answered at the threshold", fact(F.VISIT, "c1#1", "answered", 40_000_000), {
        rc("ccpulse_queue_answered_total"): 1, rc("ccpulse_queue_answered_within_sla_total"): 1,
        rc("ccpulse_wait_seconds_count"): 1, rc("ccpulse_wait_seconds_sum"): 40.0}),
    ("answered past the threshold", fact(F.VISIT, "c1#1", "answered", 40_001_000), {
        rc("ccpulse_queue_answered_total"): 1,
        rc("ccpulse_wait_seconds_count"): 1, rc("ccpulse_wait_seconds_sum"): 40.001}),
    ("short abandon", fact(F.VISIT, "c1#1", "abandoned", 4_999_000),
     {rc("ccpulse_queue_abandoned_total", short="true"): 1}),
    ("abandon at the short limit", fact(F.VISIT, "c1#1", "abandoned", 5_000_000),
     {rc("ccpulse_queue_abandoned_total", short="false"): 1}),
    ("transferred visit counts nothing", fact(F.VISIT, "c1#1", "transferred", 3_000_000), {}),
    ("resolved at first contact", fact(F.ENDED, True, "agent", False, True), {
        rc("ccpulse_contacts_ended_total", handled_by="agent"): 1, rc("ccpulse_contacts_resolved_total"): 1,
        rc("ccpulse_contacts_first_line_total"): 1, rc("ccpulse_contacts_fcr_known_total"): 1,
        rc("ccpulse_contacts_resolved_first_contact_total"): 1}),
    ("resolved after escalation, first_contact unknown", fact(F.ENDED, True, "bot", True, None), {
        rc("ccpulse_contacts_ended_total", handled_by="bot"): 1, rc("ccpulse_contacts_resolved_total"): 1,
        rc("ccpulse_contacts_escalated_total"): 1}),
    ("resolved, not the first contact", fact(F.ENDED, True, "agent", False, False), {
        rc("ccpulse_contacts_ended_total", handled_by="agent"): 1, rc("ccpulse_contacts_resolved_total"): 1,
        rc("ccpulse_contacts_first_line_total"): 1, rc("ccpulse_contacts_fcr_known_total"): 1}),
    ("unresolved", fact(F.ENDED, False, "none", False, True),
     {rc("ccpulse_contacts_ended_total", handled_by="none"): 1}),
    ("handle time", fact(F.HANDLE, 330_000_000, 1),
     {rc("ccpulse_handle_seconds_count"): 1, rc("ccpulse_handle_seconds_sum"): 330.0}),
    ("withdrawn handle time is ignored", fact(F.HANDLE, 330_000_000, -1), {}),
    ("bot handoff", fact(F.BOT, "handoff"), {rc("ccpulse_bot_sessions_total", outcome="handoff"): 1}),
    ("survey: top box and promoter", fact(F.SURVEY, 5, 9), {
        rc("ccpulse_csat_responses_total", score="5"): 1, rc("ccpulse_nps_responses_total", category="promoter"): 1}),
    ("survey: nps passive only", fact(F.SURVEY, None, 7),
     {rc("ccpulse_nps_responses_total", category="passive"): 1}),
    ("survey: csat 3 and detractor", fact(F.SURVEY, 3, 6), {
        rc("ccpulse_csat_responses_total", score="3"): 1,
        rc("ccpulse_nps_responses_total", category="detractor"): 1}),
    ("ticket created", fact(F.TICKET_CREATED, "t1", True), {rc("ccpulse_tickets_created_total"): 1}),
    ("ticket resolved at 24 h", fact(F.TICKET_RESOLVED, "t1", DAY_MS),
     {rc("ccpulse_tickets_resolved_total", within="24h"): 1}),
    ("ticket resolved just after 24 h", fact(F.TICKET_RESOLVED, "t1", DAY_MS + 1),
     {rc("ccpulse_tickets_resolved_total", within="72h"): 1}),
    ("ticket resolved at 72 h", fact(F.TICKET_RESOLVED, "t1", 3 * DAY_MS),
     {rc("ccpulse_tickets_resolved_total", within="72h"): 1}),
    ("ticket resolved after 72 h", fact(F.TICKET_RESOLVED, "t1", 3 * DAY_MS + 1),
     {rc("ccpulse_tickets_resolved_total", within="later"): 1}),
]


@pytest.mark.parametrize(("case", "one_fact", "expected"), FACT_CASES, ids=[c[0] for c in FACT_CASES])
def test_each_fact_moves_exactly_its_series(expo: Exposition, case: str, one_fact: F.Fact,
                                            expected: dict[Key, float]) -> None:
    expo.observe([fact(F.CONTACT)])  # the pair's series exist before the fact under test
    before = samples(expo)
    expo.observe([one_fact])
    assert moved(before, samples(expo)) == pytest.approx(expected)


def test_first_fact_of_a_pair_creates_all_its_counters_at_zero(expo: Exposition) -> None:
    expo.observe([fact(F.CONTACT)])
    now = samples(expo)
    assert now[rc("ccpulse_queue_answered_within_sla_total")] == 0
    assert now[rc("ccpulse_queue_abandoned_total", short="false")] == 0
    assert {now[rc("ccpulse_csat_responses_total", score=str(s))] for s in range(1, 6)} == {0}
    assert now[rc("ccpulse_tickets_resolved_total", within="later")] == 0
    assert now[rc("ccpulse_wait_seconds_count")] == 0


def test_wait_histogram_buckets_around_the_threshold(expo: Exposition) -> None:
    expo.observe([fact(F.VISIT, "c1#1", "answered", 40_000_000)])
    expo.observe([fact(F.VISIT, "c2#1", "answered", 40_500_000)])
    now = samples(expo)
    assert now[rc("ccpulse_wait_seconds_bucket", le="30.0")] == 0
    assert now[rc("ccpulse_wait_seconds_bucket", le="40.0")] == 1
    assert now[rc("ccpulse_wait_seconds_bucket", le="60.0")] == 2
    assert now[rc("ccpulse_wait_seconds_bucket", le="+Inf")] == 2


def bucket_edges(expo: Exposition, name: str) -> set[str]:
    return {dict(k[1])["le"] for k in samples(expo) if k[0] == name + "_bucket"}


def test_wait_buckets_include_every_sla_threshold(expo: Exposition) -> None:
    expo.observe([fact(F.CONTACT)])
    edges = bucket_edges(expo, "ccpulse_wait_seconds")
    assert {f"{float(c.sla_threshold_s)}" for c in Settings().channels.values()} <= edges
    assert {"1.0", "259200.0", "+Inf"} <= edges


def test_configured_threshold_becomes_a_bucket_edge_and_the_sla_limit() -> None:
    expo = Exposition(load(env={"CCPULSE_CHANNELS__VOICE__SLA_THRESHOLD_S": "33.5"}))
    expo.observe([fact(F.VISIT, "c1#1", "answered", 33_500_000)])
    expo.observe([fact(F.VISIT, "c2#1", "answered", 34_000_000)])
    now = samples(expo)
    assert "33.5" in bucket_edges(expo, "ccpulse_wait_seconds")
    assert now[rc("ccpulse_wait_seconds_bucket", le="33.5")] == 1
    assert now[rc("ccpulse_queue_answered_within_sla_total")] == 1


def record(region: str = MOW, channel: str = "voice", window: str = "15m", **values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "region": region, "channel": channel, "window": window,
        "service_level": 0.9, "abandon_rate": 0.04, "wait_avg_s": 12.5, "wait_p90_s": 38.0, "fcr_rate": 0.8,
        "first_line_rate": 0.97, "bot_share": 0.3, "bot_containment": 0.6, "csat_top_box": 0.5, "nps": -12.5,
        "waiting_now": 4, "oldest_waiting_s": 61.25, "tickets_open": 7, "tickets_open_over_72h": 2,
    }
    base.update(values)
    return base


ROLLING = {"ccpulse_service_level_ratio": "service_level", "ccpulse_abandon_ratio": "abandon_rate",
           "ccpulse_wait_avg_seconds": "wait_avg_s", "ccpulse_wait_p90_seconds": "wait_p90_s",
           "ccpulse_fcr_ratio": "fcr_rate", "ccpulse_first_line_ratio": "first_line_rate",
           "ccpulse_bot_share_ratio": "bot_share", "ccpulse_bot_containment_ratio": "bot_containment",
           "ccpulse_csat_top_box_ratio": "csat_top_box", "ccpulse_nps_score": "nps"}


def test_rolling_and_live_gauges_follow_records(expo: Exposition) -> None:
    rec = record()
    expo.set_records([rec, record(window="60m", service_level=0.5, waiting_now=99)])
    now = samples(expo)
    for name, field in ROLLING.items():
        assert now[rc(name, window="15m")] == rec[field], name
    assert now[rc("ccpulse_service_level_ratio", window="60m")] == 0.5
    assert now[rc("ccpulse_waiting_contacts")] == 4  # live values come from the 15m record only
    assert now[rc("ccpulse_oldest_waiting_seconds")] == 61.25
    assert now[rc("ccpulse_tickets_open", over_72h="false")] == 5
    assert now[rc("ccpulse_tickets_open", over_72h="true")] == 2


def test_null_value_removes_the_gauge(expo: Exposition) -> None:
    expo.set_records([record(), record(window="5m")])
    expo.set_records([record(service_level=None, nps=None, oldest_waiting_s=None, waiting_now=0)])
    now = samples(expo)
    assert rc("ccpulse_service_level_ratio", window="15m") not in now
    assert rc("ccpulse_nps_score", window="15m") not in now
    assert rc("ccpulse_oldest_waiting_seconds") not in now
    assert now[rc("ccpulse_waiting_contacts")] == 0
    assert now[rc("ccpulse_service_level_ratio", window="5m")] == 0.9
    assert now[rc("ccpulse_abandon_ratio", window="15m")] == 0.04
    expo.set_records([record(service_level=0.75)])
    assert samples(expo)[rc("ccpulse_service_level_ratio", window="15m")] == 0.75


def test_a_ratio_never_seen_is_absent(expo: Exposition) -> None:
    expo.set_records([record(bot_containment=None)])
    assert rc("ccpulse_bot_containment_ratio", window="15m") not in samples(expo)


def feed_region(expo: Exposition, region: str) -> None:
    for one in (fact(F.CONTACT, region=region), fact(F.VISIT, "c#1", "answered", 3_000_000, region=region),
                fact(F.HANDLE, 60_000_000, 1, region=region)):
        expo.observe([one])
    expo.set_records([record(region=region), record(region=region, channel="ALL")])
    expo.region_event(region, T0)


def regions_in(now: dict[Key, float]) -> set[str]:
    return {dict(k[1])["region"] for k in now if "region" in dict(k[1])}


def test_forget_regions_removes_every_series_of_the_region_only(expo: Exposition) -> None:
    feed_region(expo, MOW)
    feed_region(expo, SPE)
    expo.set_records([record(region="ALL", channel="ALL")])
    expo.forget_regions([MOW])
    now = samples(expo)
    assert regions_in(now) == {SPE, "ALL"}
    assert now[rc("ccpulse_contacts_total", region=SPE)] == 1
    assert now[key("ccpulse_region_last_event_timestamp_seconds", region=SPE)] == T0 / 1000
    assert now[key("ccpulse_events_total", result="accepted")] == 0  # pipeline health stays


def test_a_forgotten_region_comes_back_from_zero(expo: Exposition) -> None:
    feed_region(expo, MOW)
    expo.forget_regions([MOW])
    expo.observe([fact(F.CONTACT)])
    expo.region_event(MOW, T0 - 1000)  # older than before forgetting: the region starts afresh
    now = samples(expo)
    assert now[rc("ccpulse_contacts_total")] == 1
    assert now[rc("ccpulse_queue_answered_total")] == 0
    assert now[key("ccpulse_region_last_event_timestamp_seconds", region=MOW)] == (T0 - 1000) / 1000
    assert rc("ccpulse_service_level_ratio", window="15m") not in now


def test_pipeline_health_series_exist_from_the_start(expo: Exposition) -> None:
    now = samples(expo)
    for result in ("accepted", "duplicate", "rejected"):
        assert now[key("ccpulse_events_total", result=result)] == 0
    for reason in REASONS:
        assert now[key("ccpulse_events_rejected_total", reason=reason)] == 0
    assert now[key("ccpulse_event_lag_seconds_count")] == 0
    assert now[key("ccpulse_watermark_timestamp_seconds")] == 0


def test_pipeline_health_series_move(expo: Exposition) -> None:
    expo.events_read({"accepted": 1, "duplicate": 1, "rejected": 1}, {"too_late": 1}, T0,
                     [T0 - 200, T0 + 3000,  # a slightly future event: counted as no lag
                      T0 - 100_000_000])
    expo.set_watermark(T0)
    expo.region_event(MOW, T0)
    expo.region_event(MOW, T0 - 5000)  # an older event does not move the time back
    now = samples(expo)
    assert now[key("ccpulse_events_total", result="accepted")] == 1
    assert now[key("ccpulse_events_total", result="duplicate")] == 1
    assert now[key("ccpulse_events_total", result="rejected")] == 1
    assert now[key("ccpulse_events_rejected_total", reason="too_late")] == 1
    assert now[key("ccpulse_events_rejected_total", reason="malformed")] == 0
    assert now[key("ccpulse_event_lag_seconds_bucket", le="0.05")] == 1
    assert now[key("ccpulse_event_lag_seconds_bucket", le="0.25")] == 2
    assert now[key("ccpulse_event_lag_seconds_bucket", le="86400.0")] == 2
    assert now[key("ccpulse_event_lag_seconds_bucket", le="172800.0")] == 3
    assert now[key("ccpulse_event_lag_seconds_bucket", le="+Inf")] == now[key("ccpulse_event_lag_seconds_count")] == 3
    assert now[key("ccpulse_event_lag_seconds_sum")] == pytest.approx(100_000.2)
    assert now[key("ccpulse_watermark_timestamp_seconds")] == T0 / 1000
    assert now[key("ccpulse_region_last_event_timestamp_seconds", region=MOW)] == T0 / 1000


def test_handle_buckets_span_10s_to_4h(expo: Exposition) -> None:
    expo.observe([fact(F.CONTACT)])
    edges = bucket_edges(expo, "ccpulse_handle_seconds") - {"+Inf"}
    assert min(map(float, edges)) == 10 and max(map(float, edges)) == 4 * 3600


def full_exposition() -> Exposition:
    expo = Exposition(Settings())
    for _, one, _ in FACT_CASES:
        expo.observe([one])
    expo.observe([fact(F.BOT, "resolved", channel="chat")])
    expo.set_records([record(), record(channel="ALL", window="today"), record(region="ALL", oldest_waiting_s=None)])
    expo.events_read({"rejected": 1}, {"malformed": 1}, T0, [T0 - 1500])
    expo.set_watermark(T0)
    expo.region_event(MOW, T0)
    return expo


def test_no_created_series() -> None:
    names = {k[0] for k in samples(full_exposition())}
    assert not [name for name in names if name.endswith("_created")]
    assert "ccpulse_contacts_total" in names


def test_two_expositions_do_not_share_series() -> None:
    first, second = Exposition(Settings()), Exposition(Settings())
    first.observe([fact(F.CONTACT)])
    assert rc("ccpulse_contacts_total") not in samples(second)


def test_promtool_check_metrics_finds_no_problem() -> None:
    result = subprocess.run([require_tool("promtool"), "check", "metrics"], input=full_exposition().exposition(),
                            capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert b"problem" not in result.stdout + result.stderr.lower()


def test_asking_for_one_series_renders_that_series_alone() -> None:
    """`/metrics?name[]=` renders a restricted registry; the fact-fed and record-fed collectors must
    name their series (`describe`) for it to find them, and must not bring their other series along."""
    expo = full_exposition()
    expo.set_records([record()])
    for name, family in (("ccpulse_contacts_total", "ccpulse_contacts"),
                         ("ccpulse_wait_seconds_count", "ccpulse_wait_seconds"),
                         ("ccpulse_waiting_contacts", "ccpulse_waiting_contacts")):
        text = generate_latest(expo.registry.restricted_registry([name])).decode()
        families = list(text_string_to_metric_families(text))
        assert [f.name for f in families] == [family]
        assert {s.name for f in families for s in f.samples} == {name}
        assert rc(name) in samples(expo)
