"""Recording rules: the spec's queue, contact and bot ratios over 5m/15m/1h from the counters.

Counters and histograms (not the workers' rolling gauges) are the source because they sum
correctly across workers and survive restarts. Names follow ``level:metric:operation``; the
level is ``region_channel`` because every series carries both labels (rollups carry ALL).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from streams.config import Settings
from streams.rules.promql import at_all_levels, increase_at_all_levels, ratio, sum_by, union_sum

WINDOWS: tuple[str, ...] = ("5m", "15m", "1h")
LEVEL = "region_channel"


@dataclasses.dataclass(frozen=True)
class Count:
    """A counter whose increase is recorded per window: ``name`` in the record, ``source`` scraped."""

    name: str
    source: str
    keep: tuple[str, ...] = ()


COUNTS: tuple[Count, ...] = (
    Count("ccpulse_queue_answered", "ccpulse_queue_answered_total"),
    Count("ccpulse_queue_answered_within_sla", "ccpulse_queue_answered_within_sla_total"),
    Count("ccpulse_queue_abandoned_long", 'ccpulse_queue_abandoned_total{short="false"}'),
    Count("ccpulse_wait_seconds_sum", "ccpulse_wait_seconds_sum"),
    Count("ccpulse_wait_seconds_count", "ccpulse_wait_seconds_count"),
    Count("ccpulse_contacts_ended", "ccpulse_contacts_ended_total", ("handled_by",)),
    Count("ccpulse_contacts_first_line", "ccpulse_contacts_first_line_total"),
    Count("ccpulse_contacts_resolved_first_contact", "ccpulse_contacts_resolved_first_contact_total"),
    Count("ccpulse_contacts_fcr_known", "ccpulse_contacts_fcr_known_total"),
    Count("ccpulse_bot_sessions", "ccpulse_bot_sessions_total", ("outcome",)),
)

P90 = 0.9


def increase_record(name: str, window: str) -> str:
    return f"{LEVEL}:{name}:increase{window}"


def ratio_record(name: str, window: str) -> str:
    return f"{LEVEL}:{name}:ratio_rate{window}"


def visits_record(window: str) -> str:
    """The service-level denominator (answered + long abandons), also the alerts' volume guard."""
    return increase_record("ccpulse_queue_visits", window)


def ended_record(window: str) -> str:
    """Contacts ended, whoever handled them."""
    return f"sum without (handled_by) ({increase_record('ccpulse_contacts_ended', window)})"


def mean_wait_record(window: str) -> str:
    return f"{LEVEL}:ccpulse_wait_seconds:mean{window}"


def p90_wait_record(window: str) -> str:
    return f"{LEVEL}:ccpulse_wait_seconds:p90_rate{window}"


SL_TARGET = "channel:ccpulse_service_level_target:ratio"
ABANDON_TARGET = "channel:ccpulse_abandon_target:ratio"
SLA_THRESHOLD = "channel:ccpulse_sla_threshold:seconds"
CONSUMER_LAG = "topic:ccpulse_consumer_lag:messages"


def recording_groups(settings: Settings) -> list[dict[str, Any]]:
    """The rule groups of ``ccpulse-recording.yml``."""
    return [
        {"name": "ccpulse-targets", "rules": _target_rules(settings)},
        *({"name": f"ccpulse-kpi-{window}", "rules": _window_rules(window)} for window in WINDOWS),
        {"name": "ccpulse-pipeline", "rules": [_record(CONSUMER_LAG, _consumer_lag())]},
    ]


def _record(name: str, expr: str) -> dict[str, Any]:
    return {"record": name, "expr": expr}


def _constant(record: str, value: float, channel: str) -> dict[str, Any]:
    return {"record": record, "expr": f"vector({value:g})", "labels": {"channel": channel}}


def _target_rules(settings: Settings) -> list[dict[str, Any]]:
    """The per-channel targets as series, so that one alert rule serves every channel."""
    channels = sorted(settings.channels.items())
    rules = [_constant(SL_TARGET, c.sl_target, name) for name, c in channels]
    rules += [_constant(ABANDON_TARGET, c.abandon_target, name)
              for name, c in channels if c.abandon_target is not None]
    rules += [_constant(SLA_THRESHOLD, c.sla_threshold_s, name) for name, c in channels]
    return rules


def _window_rules(window: str) -> list[dict[str, Any]]:
    rules = [_record(increase_record(c.name, window), increase_at_all_levels(c.source, window, c.keep))
             for c in COUNTS]

    def inc(name: str) -> str:
        return increase_record(name, window)

    visits = visits_record(window)
    rules.append(_record(visits, union_sum(inc("ccpulse_queue_answered"), inc("ccpulse_queue_abandoned_long"))))
    ratios = {
        "ccpulse_service_level": (inc("ccpulse_queue_answered_within_sla"), visits),
        "ccpulse_abandon": (inc("ccpulse_queue_abandoned_long"), visits),
        "ccpulse_fcr": (inc("ccpulse_contacts_resolved_first_contact"), inc("ccpulse_contacts_fcr_known")),
        "ccpulse_first_line": (inc("ccpulse_contacts_first_line"), ended_record(window)),
        "ccpulse_bot_share": (
            f'sum without (handled_by) ({inc("ccpulse_contacts_ended")}{{handled_by="bot"}})',
            f'sum without (handled_by) ({inc("ccpulse_contacts_ended")}{{handled_by=~"bot|agent"}})'),
        "ccpulse_bot_containment": (
            f'sum without (outcome) ({inc("ccpulse_bot_sessions")}{{outcome="resolved"}})',
            f'sum without (outcome) ({inc("ccpulse_bot_sessions")})'),
    }
    rules += [_record(ratio_record(name, window), ratio(num, den)) for name, (num, den) in ratios.items()]
    rules.append(_record(mean_wait_record(window),
                         f"{inc('ccpulse_wait_seconds_sum')}\n/\n({inc('ccpulse_wait_seconds_count')} > 0)"))
    rules.append(_record(p90_wait_record(window), _p90(window)))
    return rules


def _p90(window: str) -> str:
    """p90 of the answered visits' wait from the histogram; NaN (no answered visit) is dropped."""
    quantiles = at_all_levels(
        lambda by: f"histogram_quantile({P90}, "
                   f"{sum_by(by, f'increase(ccpulse_wait_seconds_bucket[{window}])')})",
        ("le",))
    return f"(\n{quantiles}\n) >= 0"


def _consumer_lag() -> str:
    """Messages not yet committed, per topic, from Faust's sensor gauges (one owner per partition)."""
    return ("sum by (topic) (\n"
            "  max by (topic, partition) (ccpulse_topic_partition_end_offset)\n"
            "  - on (topic, partition)\n"
            "  max by (topic, partition) (ccpulse_topic_partition_offset_commited)\n"
            ")")
