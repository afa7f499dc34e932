"""The metric names the dashboards may query, in one place that the tests check every panel against.

It mirrors the Prometheus section of the spec (``metrics.md``, output contract v1); keep the two in
step. The extras are series that other components export: the Faust Prometheus sensor (app name
``ccpulse``), Prometheus' own ``up``, ``ALERTS`` from the alert rules, and ccpulse's own additions.
"""

from __future__ import annotations

#: Counters (labels region, channel, plus the extra label noted).
COUNTERS: tuple[str, ...] = (
    "ccpulse_contacts_total",
    "ccpulse_queue_offered_total",
    "ccpulse_queue_answered_total",
    "ccpulse_queue_answered_within_sla_total",
    "ccpulse_queue_abandoned_total",  # short
    "ccpulse_contacts_ended_total",  # handled_by
    "ccpulse_contacts_resolved_total",
    "ccpulse_contacts_resolved_first_contact_total",
    "ccpulse_contacts_fcr_known_total",
    "ccpulse_contacts_escalated_total",
    "ccpulse_bot_sessions_total",  # outcome
    "ccpulse_csat_responses_total",  # score
    "ccpulse_nps_responses_total",  # category
    "ccpulse_tickets_created_total",
    "ccpulse_tickets_resolved_total",  # within = 24h | 72h | later
)

#: Histograms: the base names; the series are ``_bucket``, ``_sum`` and ``_count``.
HISTOGRAMS: tuple[str, ...] = (
    "ccpulse_wait_seconds",
    "ccpulse_handle_seconds",
    "ccpulse_event_lag_seconds",
)

#: Rolling gauges computed in the stream, label ``window`` (5m, 15m, 60m, today); rollups use "ALL".
ROLLING_GAUGES: tuple[str, ...] = (
    "ccpulse_service_level_ratio",
    "ccpulse_abandon_ratio",
    "ccpulse_wait_avg_seconds",
    "ccpulse_wait_p90_seconds",
    "ccpulse_fcr_ratio",
    "ccpulse_first_line_ratio",
    "ccpulse_bot_share_ratio",
    "ccpulse_bot_containment_ratio",
    "ccpulse_csat_top_box_ratio",
    "ccpulse_nps_score",
)

#: Live gauges: the state at the watermark.
LIVE_GAUGES: tuple[str, ...] = (
    "ccpulse_waiting_contacts",
    "ccpulse_oldest_waiting_seconds",
    "ccpulse_tickets_open",  # over_72h
)

#: Pipeline health (no region label).
PIPELINE: tuple[str, ...] = (
    "ccpulse_events_total",  # result = accepted | duplicate | rejected
    "ccpulse_events_rejected_total",  # reason
    "ccpulse_watermark_timestamp_seconds",
)

#: Not in metrics.md: ccpulse's own additions (streams/exposition.py), and series exported by the Faust
#: sensor, by Prometheus itself and by the alert rules.
EXTRAS: tuple[str, ...] = (
    "ccpulse_stalled_partitions",
    "ccpulse_topic_partition_end_offset",
    "ccpulse_topic_partition_offset_commited",  # sic: Faust's spelling
    "up",
    "ALERTS",
)

HISTOGRAM_SERIES: tuple[str, ...] = tuple(
    f"{name}{suffix}" for name in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count"))

#: Every series name a panel query may select.
KNOWN: frozenset[str] = frozenset(
    COUNTERS + HISTOGRAM_SERIES + ROLLING_GAUGES + LIVE_GAUGES + PIPELINE + EXTRAS)
