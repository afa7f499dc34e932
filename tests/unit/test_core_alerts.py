"""SLA breach transitions (spec: SLA breaches): judged on the records the engine builds from visits,
at the edges the spec draws: below the target, above the abandon target, at least `min_volume`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from oracle import default_settings, ev, ms, run_engine

from streams.core.alerts import BreachTracker

T = ms("2026-11-22T10:00:00Z")
SETTINGS = default_settings()
MIN_VOLUME = SETTINGS.pipeline.min_volume  # 20 by default


def visits(within: int = 0, over: int = 0, abandoned: int = 0, channel: str = "voice", region: str = "RU-MOW",
           at_ms: int = T) -> list[dict[str, Any]]:
    """Visits left at `at_ms`: answered within the channel's threshold (1 s), answered over it, and
    abandoned after 100 s (never a short abandon)."""
    kinds = [("answered", 1)] * within + [("answered", 100_000)] * over + [("abandoned", 100)] * abandoned
    return [ev("queue.left", at_ms, contact=f"{region}-{channel}-{at_ms}-{i}", channel=channel, region=region,
               reason=reason, wait_s=wait_s) for i, (reason, wait_s) in enumerate(kinds)]


def judge(tracker: BreachTracker, events: list[dict[str, Any]], as_of: int = T) -> list[dict[str, Any]]:
    """Every record the engine builds at `as_of` (all windows and rollups), judged at once."""
    _, records, _ = run_engine(events, as_of=as_of)
    return tracker.evaluate(records.values())


def tracker() -> BreachTracker:
    return BreachTracker(SETTINGS.channels, MIN_VOLUME)


def summary(alerts: list[dict[str, Any]]) -> list[tuple[str, str, str, str, float | None]]:
    return [(a["state"], a["region"], a["channel"], a["metric"], a["value"]) for a in alerts]


def test_a_breach_is_published_once_for_the_15m_record_of_its_region_and_channel() -> None:
    judge_with = tracker()
    events = visits(within=17, over=3)  # 0.85 < 0.90; the 5m, 60m, today and ALL records are as bad
    alerts = judge(judge_with, events)
    assert alerts == [{"schema": "ccpulse.alert/v1", "state": "breach", "region": "RU-MOW", "channel": "voice",
                       "metric": "service_level", "value": 0.85, "target": 0.90, "window": "15m",
                       "as_of": "2026-11-22T10:00:00.000Z"}]
    assert judge(judge_with, events) == [], "only transitions are published"


def test_a_service_level_equal_to_its_target_is_not_a_breach() -> None:
    assert judge(tracker(), visits(within=18, over=2)) == []  # 0.90 exactly: not below


def test_an_abandon_rate_above_its_target_breaches_and_one_equal_to_it_does_not() -> None:
    assert judge(tracker(), visits(within=19, abandoned=1)) == []  # 1/20 = 0.05 exactly
    alerts = judge(tracker(), visits(within=18, abandoned=2))  # 0.10; service level 18/20 = 0.90, not below
    assert summary(alerts) == [("breach", "RU-MOW", "voice", "abandon_rate", 0.1)]
    assert alerts[0]["target"] == 0.05


def test_nothing_is_decided_below_min_volume() -> None:
    assert judge(tracker(), visits(over=MIN_VOLUME - 1)) == []
    assert summary(judge(tracker(), visits(over=MIN_VOLUME))) == [("breach", "RU-MOW", "voice", "service_level", 0.0)]


def test_a_channel_without_an_abandon_target_alerts_on_service_level_only() -> None:
    alerts = judge(tracker(), visits(abandoned=MIN_VOLUME, channel="email"))  # abandon rate 1.0
    assert summary(alerts) == [("breach", "RU-MOW", "email", "service_level", 0.0)]


def test_a_breach_recovers_when_the_value_is_back_within_target() -> None:
    judge_with = tracker()
    assert len(judge(judge_with, visits(over=MIN_VOLUME))) == 1
    recovered = judge(judge_with, visits(within=18, over=2))
    assert summary(recovered) == [("recovered", "RU-MOW", "voice", "service_level", 0.9)]


def test_a_breach_recovers_when_its_window_has_no_visits_left() -> None:
    judge_with = tracker()
    assert len(judge(judge_with, visits(over=MIN_VOLUME))) == 1
    later = T + 20 * 60_000  # the 15m window has moved past every visit
    recovered = judge(judge_with, [*visits(over=MIN_VOLUME), ev("contact.started", later, contact="clock")],
                      as_of=later)
    assert summary(recovered) == [("recovered", "RU-MOW", "voice", "service_level", None)]


def test_a_breach_stays_while_the_value_stays_bad_even_below_min_volume() -> None:
    """Volume decides when a breach starts, not when it ends: fewer visits do not mean a better service."""
    judge_with = tracker()
    assert len(judge(judge_with, visits(over=MIN_VOLUME))) == 1
    assert judge(judge_with, visits(over=3)) == []


def test_forgotten_regions_start_afresh() -> None:
    judge_with = tracker()
    assert len(judge(judge_with, visits(over=MIN_VOLUME))) == 1
    judge_with.forget(["RU-MOW"])
    assert judge(judge_with, visits(within=MIN_VOLUME)) == [], "nothing to recover from once forgotten"
    assert summary(judge(judge_with, visits(over=MIN_VOLUME))) == [
        ("breach", "RU-MOW", "voice", "service_level", 0.0)]


def test_breaches_restored_from_the_topic_recover_when_found_good() -> None:
    """A region that comes from another owner (or from before a restart) in breach and recovered
    meanwhile is published as recovered at its first evaluation, not left open downstream."""
    judge_with = tracker()
    judge_with.restore({("RU-MOW", "voice", "service_level")})
    assert summary(judge(judge_with, visits(within=MIN_VOLUME))) == [
        ("recovered", "RU-MOW", "voice", "service_level", 1.0)]


def test_a_restore_takes_the_topic_s_word_for_the_regions_the_tracker_judged_itself_too() -> None:
    """A region kept through a rebalance may have had another owner meanwhile (this worker expelled
    from its group while it stood still): the topic, not the tracker's memory, says what downstream
    last saw."""
    judge_with = tracker()
    assert len(judge(judge_with, visits(over=MIN_VOLUME, region="RU-CHE"))) == 1
    judge_with.restore({("RU-MOW", "voice", "service_level")})
    assert judge_with.in_breach == {("RU-MOW", "voice", "service_level")}
    assert summary(judge(judge_with, visits(over=MIN_VOLUME, region="RU-CHE"))) == [
        ("breach", "RU-CHE", "voice", "service_level", 0.0)], "recovered on the topic, bad again: a new breach"


def test_a_transition_adopted_from_another_worker_is_answered_when_it_is_wrong() -> None:
    """Another worker's breach, delivered after this one read the topic back, is downstream's last
    word: a region found good is published as recovered; its recovery of a region found bad, as a
    new breach; a transition that is right is left as it is."""
    judge_with = tracker()
    assert len(judge(judge_with, visits(over=MIN_VOLUME, region="RU-CHE"))) == 1
    judge_with.adopt(("RU-MOW", "voice", "service_level"), "breach")
    judge_with.adopt(("RU-CHE", "voice", "service_level"), "recovered")
    judge_with.adopt(("RU-SPE", "voice", "service_level"), "breach")
    events = visits(within=MIN_VOLUME) + visits(over=MIN_VOLUME, region="RU-CHE") + visits(over=MIN_VOLUME,
                                                                                          region="RU-SPE")
    assert sorted(summary(judge(judge_with, events))) == [
        ("breach", "RU-CHE", "voice", "service_level", 0.0),
        ("recovered", "RU-MOW", "voice", "service_level", 1.0)]
