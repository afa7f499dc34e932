"""The Faust app: topics, stage one's intake, the agents of stage two and the country rollup, the publisher.

Stage one reads the events topic in batches outside Faust's per-message machinery (`Intake`);
the agents are thin: each hands raw bytes to a stage object (`RegionalStage`, `CountryRollup`)
that holds the logic. Values are raw bytes + orjson rather than Faust models, which cost ~10x
the JSON parse per event.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson
from faust.exceptions import NotReady, ProducerSendError
from faust.types import TP
from mode import CrashingSupervisor

from streams.config import Settings
from streams.core.records import ALL
from streams.exposition import Exposition
from streams.streaming.credentials import faust_broker_options
from streams.streaming.intake import PRODUCER_LINGER_MS, Intake, OffsetSensors
from streams.streaming.intake import Topics as IntakeTopics
from streams.streaming.regional import RegionalStage, record_key
from streams.streaming.rollup import CountryRollup
from streams.streaming.sensors import install_metrics_page
from streams.streaming.tracking import TrackingStage
from streams.streaming.watchdog import PartitionGuard

log = logging.getLogger(__name__)
Job = Callable[..., Awaitable[None]]

#: a publishing round of d seconds is followed by a pause of this many times d: while stage one reads a
#: backlog (publishing then takes at most a fifth of the event loop), and while it keeps up (at most half)
PUBLISH_PAUSE_BACKLOG = 4.0
PUBLISH_PAUSE_STEADY = 1.0
#: how often the partition guard looks for partitions to rewind, and for stalled ones (see watchdog)
REWIND_CHECK_INTERVAL_S = 1.0
STALL_CHECK_INTERVAL_S = 5.0


@dataclasses.dataclass
class Worker:
    """The app and the stages it drives, so tests and the CLI can reach them."""

    app: faust.App
    tracking: TrackingStage
    intake: Intake
    regional: RegionalStage
    exposition: Exposition


class ServiceWorker(faust.Worker):
    """Faust's worker without its terminal spinner. To spin on every log record, the spinner sets
    the root logger to DEBUG, so every debug call in Faust and aiokafka (one per message sent)
    builds a record that no handler prints; a service has no terminal to spin on."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None


def build_app(settings: Settings, *, web_port: int | None = None, datadir: str | None = None) -> Worker:
    topics = settings.topics
    worker = settings.worker
    partitions = topics.partitions
    app = faust.App(
        worker.app_id,
        broker=f"kafka://{settings.kafka.bootstrap_servers}",
        datadir=datadir or worker.datadir,
        web_port=web_port if web_port is not None else worker.web_port,
        web_bind=worker.web_bind,
        web_host=worker.web_bind,
        topic_partitions=partitions,
        topic_replication_factor=topics.replication_factor,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=True,
        stream_buffer_maxsize=worker.stream_buffer_maxsize,
        producer_linger_ms=PRODUCER_LINGER_MS,
        # An agent that raises has met a bug, not bad input (that is dead-lettered): restarting it
        # in place would resume from a stream in an unknown state, so the whole worker exits
        # non-zero and the process supervisor (systemd, Kubernetes) restarts it from the changelogs.
        agent_supervisor=CrashingSupervisor,
        **faust_broker_options(settings.kafka),
    )
    exposition = Exposition(settings)
    install_metrics_page(app, exposition.registry)

    events_topic = app.topic(topics.name("events"), partitions=partitions)
    dlq_topic = app.topic(topics.name("events.dlq"), partitions=partitions)
    facts_topic = app.topic(topics.name("facts"), partitions=partitions, acks=False)
    metrics_topic = app.topic(topics.name("metrics"), partitions=partitions)
    alerts_topic = app.topic(topics.name("alerts"), partitions=partitions)
    rollup_topic = app.topic(topics.name("rollup"), partitions=1, internal=True, acks=False, compacting=True,
                             deleting=True, retention=settings.pipeline.retention_horizon_s + 6 * 3600)

    tracking = TrackingStage(settings, partitions)
    names = IntakeTopics(*(topic.get_topic_name() for topic in (events_topic, facts_topic, dlq_topic)))
    intake = Intake(settings, tracking, exposition, names,
                    OffsetSensors(app.monitor.track_tp_end_offset, app.monitor.on_tp_commit),
                    group_id=f"{worker.app_id}-intake")
    regional = RegionalStage(settings, observer=exposition.observe, region_event=exposition.region_event)
    country: dict[str, Any] = {"rollup": CountryRollup(settings), "owned": False}

    quiet_when_stopping = _quiet_when_stopping(app)

    @app.task
    async def read_events() -> None:
        """Stage one: validate, deduplicate and track contacts; facts go out batched per facts partition.
        The topics no agent reads are declared first, as Faust declares the agents' (for a broker
        where `ccpulse topics apply` was not run)."""
        for topic in (events_topic, dlq_topic, metrics_topic, alerts_topic):
            await topic.maybe_declare()
        await intake.run()

    @app.agent(facts_topic)
    async def aggregate(stream: faust.StreamT) -> None:
        """Stage two: count facts into the region's buckets.

        A partition's state is rebuilt from its first offset: when the first message read of a
        partition new here lies past it (Faust dropped what it had fetched during the rebalance),
        the message is skipped and the partition rewound to its start (PartitionGuard)."""
        async for event in stream.events():
            message = event.message
            if message.partition not in regional.partitions:
                tp = TP(message.topic, message.partition)
                start = (await app.consumer.earliest_offsets(tp)).get(tp) or 0
                if message.offset > start:
                    log.info("facts partition %d: first read at offset %d, past its start %d; reading it from the "
                             "start", message.partition, message.offset, start)
                    guard.rewind_also([tp])
                    continue
                log.info("facts partition %d: rebuilding from offset %d", message.partition, message.offset)
            regional.handle(event.value, message.partition, message.offset)

    @app.agent(rollup_topic)
    async def roll_up(stream: faust.StreamT) -> None:
        """The country rollup: merge every region's buckets into region=ALL."""
        async for event in stream.events():
            country["rollup"].handle(event.value, event.message.offset)

    pacing = {"not_before": 0.0}

    async def send(topic: faust.TopicT, key: bytes, value: bytes, partition: int | None = None) -> None:
        """Straight to Faust's producer (aiokafka): `Topic.send` wraps every message in Faust's own
        bookkeeping, which made a round of thousands of records and rollup upserts take seconds."""
        await app.producer.send(topic.get_topic_name(), key, value, partition, None, None)

    @app.timer(interval=settings.pipeline.publish_interval_s)
    @quiet_when_stopping
    async def publish() -> None:
        """Publish changed records (at most once per interval per key) and breach transitions.

        Building every record of a busy worker can take a good part of a second. While stage one
        reads a backlog, a round that took d seconds is followed by a pause of PUBLISH_PAUSE_BACKLOG
        * d, so the backlog is read at nearly full speed; once it keeps up, by PUBLISH_PAUSE_STEADY *
        d, so the records stay fresh without publishing taking the whole event loop."""
        started = time.monotonic()
        if started < pacing["not_before"]:
            return
        caught_up = {number: _caught_up(app, facts_topic, number, state.next_offset)
                     for number, state in regional.partitions.items() if not state.rebuilt}
        publication = regional.collect(caught_up)
        records = publication.records
        rollup = country["rollup"]
        if country["owned"] and rollup.as_of is not None:
            rollup.rebuilt = rollup.rebuilt or _caught_up(app, rollup_topic, 0, rollup.next_offset)
            if rollup.rebuilt:
                records = records + rollup.collect()
        exposition.set_records(records)
        for record in records:
            await send(metrics_topic, record_key(record).encode(), orjson.dumps(record))
        for alert in publication.alerts:
            await send(alerts_topic, f"{alert['region']}|{alert['channel']}".encode(), orjson.dumps(alert))
        for key, value in publication.rollup:
            await send(rollup_topic, key, value, partition=0)
        finished = time.monotonic()
        pause = PUBLISH_PAUSE_BACKLOG if intake.backlogged else PUBLISH_PAUSE_STEADY
        pacing["not_before"] = finished + pause * (finished - started)

    def handled() -> dict[str, dict[int, int]]:
        """The next offset each agent will handle, by topic and partition."""
        return {facts_topic.get_topic_name(): {n: state.next_offset for n, state in regional.partitions.items()},
                rollup_topic.get_topic_name(): {0: country["rollup"].next_offset}}

    guard = PartitionGuard(app, handled, exposition.set_stalled_partitions)

    @app.task
    async def rewind_after_rebalance() -> None:
        await guard.keep_rewinding(REWIND_CHECK_INTERVAL_S)

    app.timer(interval=STALL_CHECK_INTERVAL_S)(guard.check)

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: set[Any], **kwargs: Any) -> None:
        """Reconcile the stages rebuilt from their topics with the new assignment.

        A rebalance revokes every partition first (eager protocol) but the consumer keeps its
        position for those it gets back, so state is dropped only for partitions really lost. A
        partition new to the assignment has no position and no committed offset (acks are off), so
        the consumer starts it at the earliest offset and its state is rebuilt from there. Lost
        partitions' series leave /metrics here, before the new owner has rebuilt and serves them.
        Faust drops what it fetched while the rebalance suspended the streams and seeks back to
        committed offsets only, so these uncommitted partitions are rewound to what their stage has
        handled once the rebalance is over (PartitionGuard)."""
        facts_name, rollup_name = facts_topic.get_topic_name(), rollup_topic.get_topic_name()
        owned = {tp.partition for tp in assigned if tp.topic == facts_name}
        lost = regional.revoke([number for number in list(regional.partitions) if number not in owned])
        log.info("facts partitions owned %s (rebuilding %s), lost regions %s", sorted(owned),
                 sorted(owned - set(regional.partitions)), sorted(lost))
        owns_rollup = any(tp.topic == rollup_name for tp in assigned)
        if country["owned"] and not owns_rollup:
            lost.add(ALL)
        if owns_rollup != country["owned"]:
            country["rollup"] = CountryRollup(settings)
            country["owned"] = owns_rollup
        exposition.forget_regions(lost)
        guard.rewind({tp for tp in assigned if tp.topic in (facts_name, rollup_name)})

    return Worker(app=app, tracking=tracking, intake=intake, regional=regional, exposition=exposition)


def _quiet_when_stopping(app: faust.App) -> Callable[[Job], Job]:
    """A job caught sending while the worker stops ends quietly instead of crashing the worker.

    Stopping, Faust stops the producer before it cancels timers and agents, so a send in flight
    then fails (NotReady, or ProducerSendError for a closed producer). Nothing is lost: records
    and breach transitions are sent again by the next worker's publisher."""
    def decorate(job: Job) -> Job:
        @functools.wraps(job)
        async def run(*args: Any) -> None:
            try:
                await job(*args)
            except (NotReady, ProducerSendError):
                if not app.should_stop:
                    raise
        return run
    return decorate


def _caught_up(app: faust.App, topic: faust.TopicT, partition: int, next_offset: int) -> bool:
    """True once a partition rebuilt from its start has reached the end known to the consumer; not
    before the first fetch has told the consumer where that end is."""
    tp = TP(topic.get_topic_name(), partition)
    if tp not in app.consumer.assignment():
        return False  # lost in a rebalance whose handler has not run yet (highwater would assert)
    highwater = app.consumer.highwater(tp)
    return highwater is not None and next_offset >= highwater


