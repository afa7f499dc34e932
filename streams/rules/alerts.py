"""Alert rules: SLA breaches and KPI targets per region × channel, and pipeline health.

Every alert carries ``severity`` (page | ticket | warning), ``kind`` (kpi | pipeline), ``region``
and ``channel`` (ALL where the alert is not about one), and the annotations ``summary``,
``description`` (with the value) and ``dashboard`` (a Grafana link). Alertmanager routes on
severity and region and inhibits on kind, so those labels are the contract with
``deploy/alertmanager/alertmanager.yml``.

Service-level alerts are threshold alerts with a volume guard, not burn-rate alerts: a 14.4×
burn rate cannot be reached with a 90 % target (see research/prometheus-grafana.md §2.1).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from streams.config import Settings
from streams.rules.promql import ALL, leaf
from streams.rules.recording import (
    ABANDON_TARGET,
    CONSUMER_LAG,
    SL_TARGET,
    SLA_THRESHOLD,
    ended_record,
    increase_record,
    mean_wait_record,
    ratio_record,
    visits_record,
)


@dataclasses.dataclass(frozen=True)
class RuleOptions:
    """Alerting knobs that are not business targets (those come from the configuration)."""

    grafana_url: str = "http://localhost:3000"
    collapse_drop: float = 0.2
    silence_s: int = 900
    dead_letter_ratio: float = 0.05
    dead_letter_min_events: int = 100
    lag_min_messages: int = 1000


WHERE = "{{ $labels.region }}/{{ $labels.channel }}"


def _pct(value: float) -> str:
    return f"{value * 100:g}%"


def _channel_value(record: str, humanize: str) -> str:
    """Template text that looks up the per-channel target series of the alert's channel."""
    return ('{{ with printf "' + record + '{channel=%q}" $labels.channel | query }}'
            '{{ . | first | value | ' + humanize + ' }}{{ end }}')


def _below(record: str, target: str) -> str:
    return f"{record} < on (channel) group_left () {target}"


def _above(record: str, target: str) -> str:
    return f"{record} > on (channel) group_left () {target}"


def _and(*conditions: str) -> str:
    return "\nand on (region, channel)\n".join(conditions)


class _Builder:
    """Turns (name, expression, timing, labels, texts) into alert rules with uniform annotations."""

    def __init__(self, options: RuleOptions) -> None:
        self.base = options.grafana_url.rstrip("/")

    def alert(self, name: str, expr: str, *, for_: str, severity: str, kind: str, summary: str,
              description: str, dashboard: str, **labels: str) -> dict[str, Any]:
        link = (f"{self.base}/d/{dashboard}"
                "?var-region={{ $labels.region }}&var-channel={{ $labels.channel }}")
        texts = {"summary": summary, "description": description, "dashboard": link}
        return {
            "alert": name,
            "expr": expr,
            "for": for_,
            "labels": {"severity": severity, "kind": kind, **labels},
            "annotations": {key: _fill(text, labels) for key, text in texts.items()},
        }


def _fill(text: str, static: dict[str, str]) -> str:
    """Write the rule's static labels into a template: ``$labels`` only holds the query's labels."""
    for label, value in static.items():
        text = text.replace(f"{{{{ $labels.{label} }}}}", value)
    return text


def alert_groups(settings: Settings, options: RuleOptions) -> list[dict[str, Any]]:
    """The rule groups of ``ccpulse-alerts.yml``."""
    build = _Builder(options)
    return [
        {"name": "ccpulse-kpi-alerts", "rules": _kpi_alerts(settings, options, build)},
        {"name": "ccpulse-pipeline-alerts", "rules": _pipeline_alerts(settings, options, build)},
    ]


def _kpi_alerts(settings: Settings, options: RuleOptions, build: _Builder) -> list[dict[str, Any]]:
    volume = settings.pipeline.min_volume
    targets = settings.targets
    sl_target = _channel_value(SL_TARGET, "humanizePercentage")
    kpi = {"kind": "kpi", "dashboard": "ccpulse-region"}
    return [
        build.alert(
            "CcpulseServiceLevelBreach",
            _and(_below(leaf(ratio_record("ccpulse_service_level", "15m")), SL_TARGET),
                 _below(ratio_record("ccpulse_service_level", "1h"), SL_TARGET),
                 f"{visits_record('15m')} >= {volume}"),
            for_="5m", severity="warning", **kpi,
            summary=f"Service level below target in {WHERE}",
            description=(f"Service level over 15m is {{{{ $value | humanizePercentage }}}} in {WHERE}, "
                         f"below the target of {sl_target}; it is below target over 1h too "
                         f"(at least {volume} answered or abandoned contacts in 15m).")),
        build.alert(
            "CcpulseServiceLevelCollapse",
            _and(_below(leaf(ratio_record("ccpulse_service_level", "5m")),
                        f"({SL_TARGET} - {options.collapse_drop:g})"),
                 f"{visits_record('5m')} >= {volume}"),
            for_="2m", severity="page", **kpi,
            summary=f"Service level collapsed in {WHERE}",
            description=(f"Service level over the last 5m fell to {{{{ $value | humanizePercentage }}}} "
                         f"in {WHERE}, more than {options.collapse_drop * 100:g} points under the "
                         f"target of {sl_target} (at least {volume} answered or abandoned contacts "
                         "in 5m).")),
        build.alert(
            "CcpulseAbandonRateHigh",
            _and(_above(leaf(ratio_record("ccpulse_abandon", "15m")), ABANDON_TARGET),
                 _above(ratio_record("ccpulse_abandon", "1h"), ABANDON_TARGET),
                 f"{visits_record('15m')} >= {volume}"),
            for_="5m", severity="warning", **kpi,
            summary=f"Abandonment above target in {WHERE}",
            description=(f"Abandonment over 15m is {{{{ $value | humanizePercentage }}}} in {WHERE}, "
                         f"above the target of {_channel_value(ABANDON_TARGET, 'humanizePercentage')}; "
                         "it is above target over 1h too.")),
        build.alert(
            "CcpulseAsaAboveThreshold",
            _and(_above(leaf(mean_wait_record("15m")), SLA_THRESHOLD),
                 f"{increase_record('ccpulse_queue_answered', '15m')} >= {volume}"),
            for_="10m", severity="warning", **kpi,
            summary=f"Average speed of answer above the SLA threshold in {WHERE}",
            description=(f"Average speed of answer over 15m is {{{{ $value | humanizeDuration }}}} in "
                         f"{WHERE}, above the SLA threshold of "
                         f"{_channel_value(SLA_THRESHOLD, 'humanizeDuration')}.")),
        build.alert(
            "CcpulseFcrBelowTarget",
            _and(f"{leaf(ratio_record('ccpulse_fcr', '1h'))} < {targets.fcr_rate:g}",
                 f"{increase_record('ccpulse_contacts_fcr_known', '1h')} >= {volume}"),
            for_="15m", severity="ticket", **kpi,
            summary=f"First-contact resolution below target in {WHERE}",
            description=(f"First-contact resolution over 1h is {{{{ $value | humanizePercentage }}}} "
                         f"in {WHERE}, below the target of {_pct(targets.fcr_rate)}.")),
        build.alert(
            "CcpulseFirstLineBelowTarget",
            _and(f"{leaf(ratio_record('ccpulse_first_line', '1h'))} < {targets.first_line_rate:g}",
                 f"{ended_record('1h')} >= {volume}"),
            for_="15m", severity="ticket", **kpi,
            summary=f"First-line resolution below target in {WHERE}",
            description=(f"First-line resolution over 1h is {{{{ $value | humanizePercentage }}}} "
                         f"in {WHERE}, below the target of {_pct(targets.first_line_rate)}.")),
        build.alert(
            "CcpulseTicketPromiseBroken",
            'max by (region, channel) (ccpulse_tickets_open{over_72h="true"}) > 0',
            for_="2m", severity="ticket", kind="kpi", dashboard="ccpulse-tickets",
            summary=f"Open tickets past the 72 h promise in {WHERE}",
            description=(f"{{{{ $value }}}} open ticket(s) in {WHERE} were created more than 72 h ago; "
                         f"the promise is {_pct(targets.ticket_72h_rate)} resolved within 72 h.")),
    ]


def _pipeline_alerts(settings: Settings, options: RuleOptions, build: _Builder) -> list[dict[str, Any]]:
    volume = settings.pipeline.min_volume
    pipeline = {"kind": "pipeline", "dashboard": "ccpulse-pipeline", "channel": ALL}
    stalled = ("(\n  time() - ccpulse_watermark_timestamp_seconds\n"
               "  and on (instance, job) changes(ccpulse_watermark_timestamp_seconds[10m]) == 0\n"
               "  and on (instance, job) sum by (instance, job) (increase(ccpulse_events_total[10m])) > 0\n)")
    events = "sum(increase(ccpulse_events_total[10m]))"
    return [
        build.alert(
            "CcpulseRegionSilent",
            (f"time() - max by (region) (ccpulse_region_last_event_timestamp_seconds) > {options.silence_s}\n"
             "and on (region)\n(\n"
             f"  sum by (region) (increase(ccpulse_contacts_total[2h])) / 2 >= {volume}\n"
             "  or\n"
             f"  sum by (region) (increase(ccpulse_contacts_total[1h] offset 1d)) >= {volume}\n)"),
            for_="5m", severity="page", **pipeline,
            summary="Region {{ $labels.region }} stopped sending events",
            description=("The newest event of region {{ $labels.region }} is {{ $value | humanizeDuration }} "
                         f"old although the region normally has traffic (at least {volume} contacts an "
                         "hour over the last 2h, or in the same hour yesterday); channel "
                         "{{ $labels.channel }}.")),
        build.alert(
            "CcpulseNoWorkerScraped",
            'absent(up{job="ccpulse"} == 1)',
            for_="2m", severity="page", region=ALL, **pipeline,
            summary="No ccpulse worker is being scraped",
            description=("No ccpulse worker answered a scrape for 2m (up{job=\"ccpulse\"} == 1 matched "
                         "nothing), so every ccpulse series is stale; region {{ $labels.region }}, "
                         "channel {{ $labels.channel }}.")),
        build.alert(
            "CcpulseWatermarkStalled",
            (f"{stalled}\n"
             "* on (instance, job) group_right ()\n"
             "group by (instance, job, region) (ccpulse_region_last_event_timestamp_seconds)\n"
             "or on (instance, job)\n"
             f'label_replace({stalled}, "region", "{ALL}", "", "")'),
            for_="5m", severity="warning", **pipeline,
            summary="Watermark of worker {{ $labels.instance }} stalled ({{ $labels.region }})",
            description=("The watermark of worker {{ $labels.instance }} has not advanced for 10m while "
                         "events arrive; it is {{ $value | humanizeDuration }} behind the wall clock. "
                         "Region {{ $labels.region }}, channel {{ $labels.channel }}.")),
        build.alert(
            "CcpulsePartitionsStalled",
            "ccpulse_stalled_partitions > 0",
            for_="2m", severity="page", region=ALL, **pipeline,
            summary="Worker {{ $labels.instance }} is not reading some of its partitions",
            description=("Worker {{ $labels.instance }} has had {{ $value }} assigned partition(s) with messages "
                         "waiting and none handled for 2m, although it seeks them back every few seconds; the "
                         "regions of those partitions are not updating (its log names the partitions; restart "
                         "the worker). Region {{ $labels.region }}, channel {{ $labels.channel }}.")),
        build.alert(
            "CcpulseDeadLetterRateHigh",
            (f'sum(increase(ccpulse_events_total{{result="rejected"}}[10m])) / {events} '
             f"> {options.dead_letter_ratio:g}\n"
             f"and on () {events} >= {options.dead_letter_min_events}"),
            for_="5m", severity="ticket", region=ALL, **pipeline,
            summary="Many events are rejected to the dead-letter topic",
            description=("{{ $value | humanizePercentage }} of the events of the last 10m were rejected "
                         f"(threshold {_pct(options.dead_letter_ratio)}); region {{{{ $labels.region }}}}, "
                         "channel {{ $labels.channel }}.")),
        build.alert(
            "CcpulseConsumerLagGrowing",
            (f"{CONSUMER_LAG} > {options.lag_min_messages}\n"
             f"and deriv({CONSUMER_LAG}[10m]) > 0"),
            for_="10m", severity="warning", region=ALL, **pipeline,
            summary="Consumer lag on {{ $labels.topic }} keeps growing",
            description=("Consumer lag on topic {{ $labels.topic }} is {{ $value | humanize }} messages and "
                         "has grown for at least 10m; region {{ $labels.region }}, channel "
                         "{{ $labels.channel }}.")),
    ]
