"""``ccpulse topics apply``: create or update the topics of the spec, idempotently.

Run it before the first worker and after every configuration change: it creates missing topics,
raises partition counts, and sets cleanup policy and retention; it never deletes a topic or
decreases partitions (Kafka cannot, and re-keying would break per-contact ordering).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from streams import config
from streams.config import TopicSettings
from streams.errors import CcpulseError
from streams.kafka_client import admin_client, bootstrap_list


@dataclasses.dataclass(frozen=True)
class TopicPlan:
    """The wanted state of one topic."""

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]


def plans(topics: TopicSettings) -> list[TopicPlan]:
    """The spec's topics with the configured partitions, replication and retention."""
    wanted: list[tuple[str, dict[str, str]]] = [
        ("events", {"cleanup.policy": "delete", "retention.ms": str(topics.events_retention_ms)}),
        ("facts", {"cleanup.policy": "delete", "retention.ms": str(topics.facts_retention_ms)}),
        ("metrics", {"cleanup.policy": "compact"}),
        ("alerts", {"cleanup.policy": "delete", "retention.ms": str(topics.alerts_retention_ms)}),
        ("events.dlq", {"cleanup.policy": "delete", "retention.ms": str(topics.dlq_retention_ms)}),
    ]
    return [TopicPlan(topics.name(base), topics.partitions, topics.replication_factor, configs)
            for base, configs in wanted]


def apply(admin: KafkaAdminClient, wanted: Iterable[TopicPlan], timeout_ms: int) -> list[str]:
    """Bring the cluster to the wanted topics; one line per topic saying what was done."""
    wanted = list(wanted)
    existing = set(admin.list_topics())
    lines = {plan.name: _create(admin, plan, timeout_ms) for plan in wanted if plan.name not in existing}
    present = [plan for plan in wanted if plan.name in existing]
    if present:
        described = {t["name"]: t for t in admin.describe_topics([p.name for p in present])}
        current_configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, p.name, configs=dict.fromkeys(p.configs)) for p in present],
            config_filter="all")["topic"]
        for plan in present:
            lines[plan.name] = _update(admin, plan, described[plan.name], current_configs[plan.name], timeout_ms)
    return [f"{plan.name}: {lines[plan.name]}" for plan in wanted]


def _create(admin: KafkaAdminClient, plan: TopicPlan, timeout_ms: int) -> str:
    response = admin.create_topics(
        {plan.name: {"num_partitions": plan.partitions, "replication_factor": plan.replication_factor,
                     "configs": plan.configs}},
        timeout_ms=timeout_ms, raise_errors=False, wait_for_metadata=True)
    result = response["topics"][0]
    if result["error_code"]:
        raise CcpulseError(f"{plan.name}: cannot create: {result['error_message'] or result['error_code']}")
    settings = ", ".join(f"{key}={value}" for key, value in plan.configs.items())
    return f"created ({plan.partitions} partitions, replication {plan.replication_factor}, {settings})"


def _update(admin: KafkaAdminClient, plan: TopicPlan, described: dict[str, Any],
            configs: dict[str, dict[str, Any]], timeout_ms: int) -> str:
    changes: list[str] = []
    notes: list[str] = []
    partitions = len(described["partitions"])
    if partitions < plan.partitions:
        response = admin.create_partitions({plan.name: plan.partitions}, timeout_ms=timeout_ms,
                                           raise_errors=False)
        for result in response.results:
            if result.error_code:
                raise CcpulseError(f"{plan.name}: cannot add partitions: {result.error_message}")
        changes.append(f"partitions {partitions} -> {plan.partitions}")
    elif partitions > plan.partitions:
        notes.append(f"has {partitions} partitions, more than the {plan.partitions} configured; "
                     "partitions are never decreased")
    replication = len(described["partitions"][0]["replica_nodes"]) if described["partitions"] else 0
    if replication != plan.replication_factor:
        notes.append(f"replication factor is {replication}, configured {plan.replication_factor}; "
                     "apply does not reassign replicas")
    differing = {key: value for key, value in plan.configs.items()
                 if configs.get(key, {}).get("value") != value}
    if differing:
        result = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, plan.name, configs=differing)])
        outcome = result["topic"][plan.name]
        if outcome != "OK":
            raise CcpulseError(f"{plan.name}: cannot change configs: {outcome}")
        changes += [f"{key} {configs.get(key, {}).get('value')} -> {value}" for key, value in differing.items()]
    status = f"updated ({'; '.join(changes)})" if changes else "unchanged"
    return "; ".join([status, *notes])


def run(args: argparse.Namespace) -> int:
    settings = config.load(args.config)
    kafka = settings.kafka
    if args.bootstrap:
        bootstrap_list(args.bootstrap, key="--bootstrap")
        kafka = dataclasses.replace(kafka, bootstrap_servers=args.bootstrap)
    topics = settings.topics
    if args.partitions is not None:
        if args.partitions < 1:
            raise CcpulseError("--partitions: must be at least 1")
        topics = dataclasses.replace(topics, partitions=args.partitions)
    admin = admin_client(kafka)
    try:
        for line in apply(admin, plans(topics), int(kafka.request_timeout_s * 1000)):
            print(line)
    finally:
        admin.close()
    return 0


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("topics", help="create or update the Kafka topics of the spec")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    apply_parser = actions.add_parser("apply", help="create missing topics, update partitions and configs")
    apply_parser.add_argument("--config", help="TOML configuration file (default: $CCPULSE_CONFIG)")
    apply_parser.add_argument("--bootstrap", metavar="HOST:PORT", help="brokers, overriding kafka.bootstrap_servers")
    apply_parser.add_argument("--partitions", type=int, help="partitions per topic, overriding topics.partitions")
    apply_parser.set_defaults(func=run)
