"""The Faust app: topics, the two consuming stages as app tasks, the publisher, the web page.

Both stages read their topics in batches with their own aiokafka consumers, outside Faust's
per-message machinery: stage one the events topic (`Intake`), stage two the facts and rollup
topics (`Aggregation`). Faust runs them, the publisher, the producer and `/metrics`, and
stops the worker when a task fails. Values are raw bytes + orjson rather than Faust models,
which cost ~10x the JSON parse per event.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson
from faust.exceptions import NotReady, ProducerSendError

from streams.config import Settings
from streams.exposition import Exposition
from streams.streaming.aggregation import HEARTBEAT_INTERVAL_MS, Aggregation
from streams.streaming.aggregation import Topics as AggregationTopics
from streams.streaming.alert_follower import SOURCE_HEADER
from streams.streaming.credentials import faust_broker_options
from streams.streaming.intake import PRODUCER_LINGER_MS, Intake, OffsetSensors
from streams.streaming.intake import Topics as IntakeTopics
from streams.streaming.partitioner import KeptHashPartitioner
from streams.streaming.publishing import Handover, KeySpacing, Round, next_start
from streams.streaming.regional import RegionalStage, record_key
from streams.streaming.sensors import install_metrics_page
from streams.streaming.tracking import TrackingStage

log = logging.getLogger(__name__)
Job = Callable[..., Awaitable[None]]

#: the producer's batch per partition: a round sends a few MB of records and rollup upserts, and with
#: aiokafka's 16 KiB batches its sends kept waiting for room behind requests in flight
PUBLISH_BATCH_BYTES = 1 << 18
#: how often stage two's partitions are checked for stalls (see aggregation)
STALL_CHECK_INTERVAL_S = 5.0


@dataclasses.dataclass
class Worker:
    """The app and the stages it drives, so tests and the CLI can reach them."""

    app: faust.App
    tracking: TrackingStage
    intake: Intake
    regional: RegionalStage
    aggregation: Aggregation
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
        topic_allow_declare=True,
        producer_linger_ms=PRODUCER_LINGER_MS,
        producer_max_batch_size=PUBLISH_BATCH_BYTES,
        producer_partitioner=KeptHashPartitioner(),
        **faust_broker_options(settings.kafka),
    )
    exposition = Exposition(settings)
    install_metrics_page(app, exposition.registry)

    events_topic = app.topic(topics.name("events"), partitions=partitions)
    dlq_topic = app.topic(topics.name("events.dlq"), partitions=partitions)
    facts_topic = app.topic(topics.name("facts"), partitions=partitions)
    metrics_topic = app.topic(topics.name("metrics"), partitions=partitions)
    alerts_topic = app.topic(topics.name("alerts"), partitions=partitions)
    rollup_topic = app.topic(topics.name("rollup"), partitions=1, internal=True, compacting=True,
                             deleting=True, retention=settings.pipeline.retention_horizon_s + 6 * 3600)

    tracking = TrackingStage(settings, partitions)
    names = IntakeTopics(*(topic.get_topic_name() for topic in (events_topic, facts_topic, dlq_topic)))
    intake = Intake(settings, tracking, exposition, names,
                    OffsetSensors(app.monitor.track_tp_end_offset, app.monitor.on_tp_commit),
                    group_id=f"{worker.app_id}-intake")
    regional = RegionalStage(settings, observer=exposition.observe, region_event=exposition.region_event)
    #: this process's name in the header of its alert transitions (see `alert_follower`)
    source = uuid.uuid4().hex.encode()
    handover = Handover(lambda: app.producer.flush(),  # the producer is made when first asked for
                        heartbeat_interval_s=HEARTBEAT_INTERVAL_MS / 1000)
    aggregation = Aggregation(settings, regional, AggregationTopics(*(topic.get_topic_name() for topic in (
                                  facts_topic, rollup_topic, alerts_topic))),
                              group_id=f"{worker.app_id}-aggregate", forget_regions=exposition.forget_regions,
                              handover=handover, source=source)

    quiet_when_stopping = _quiet_when_stopping(app)

    @app.task
    async def consume() -> None:
        """Both stages, after declaring every topic (as Faust declares an agent's, for a broker where
        `ccpulse topics apply` was not run; a group subscribed to a missing topic is not assigned it
        until a metadata refresh minutes later).

        A stage that raises has met a bug, not bad input (that is dead-lettered): the task fails,
        Faust crashes the worker, and it exits non-zero for its supervisor (systemd, Kubernetes)
        to restart it, rebuilt from the topics, rather than go on from a state in an unknown condition."""
        for topic in (events_topic, dlq_topic, facts_topic, metrics_topic, alerts_topic, rollup_topic):
            await topic.maybe_declare()
        await asyncio.gather(intake.run(), aggregation.run(), aggregation.follower.run())

    interval_s = settings.pipeline.publish_interval_s
    spacing = KeySpacing(interval_s)

    async def send(topic: faust.TopicT, key: bytes, value: bytes, partition: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> None:
        """Straight to Faust's producer (aiokafka): `Topic.send` wraps every message in Faust's own
        bookkeeping, which made a round of thousands of records and rollup upserts take seconds.
        After the event loop stood still, waits for the group's word that this worker still owns
        its partitions (see `Handover`)."""
        await handover.cleared()
        await app.producer.send(topic.get_topic_name(), key, value, partition, None, headers)

    async def publish_round() -> Round:
        """Build and send changed records (no key twice within the interval) and breach transitions."""
        started = time.monotonic()
        publication = regional.collect(aggregation.facts_caught_up())
        records = publication.records
        if aggregation.country_rebuilt():
            records = records + aggregation.country.collect()
        exposition.set_records(records)
        built = sending = time.monotonic()
        for number, record in enumerate(records):
            key = record_key(record).encode()
            wait = spacing.wait(key, time.monotonic())
            if wait:
                await asyncio.sleep(wait)
            if not number:
                sending = time.monotonic()
            await send(metrics_topic, key, orjson.dumps(record))
            spacing.sent(key, time.monotonic())  # after the send, which stamps the message (it may wait for room)
        for alert in publication.alerts:
            await send(alerts_topic, f"{alert['region']}|{alert['channel']}".encode(), orjson.dumps(alert),
                       headers=[(SOURCE_HEADER, source)])
        for key, value in publication.rollup:
            await send(rollup_topic, key, value, partition=0)
        return Round(started, built, sending, time.monotonic())

    @app.task
    @quiet_when_stopping
    async def publish() -> None:
        """Publishing rounds about an interval apart, timed by their sends (see `publishing`), the
        first an interval after the start. Building every record of a busy worker can take a good
        part of a second, so a long round is followed by a pause in proportion, and stage one reads
        a backlog at nearly full speed."""
        await asyncio.sleep(interval_s)
        while True:
            last = await handover.run_round(publish_round)
            await asyncio.sleep(next_start(last, interval_s, intake.backlogged) - time.monotonic())

    @app.task
    async def watch_for_standstills() -> None:
        await handover.keep_time()

    @app.timer(interval=STALL_CHECK_INTERVAL_S)
    async def check_stalls() -> None:
        exposition.set_stalled_partitions(aggregation.stalled())

    return Worker(app=app, tracking=tracking, intake=intake, regional=regional, aggregation=aggregation,
                  exposition=exposition)


def _quiet_when_stopping(app: faust.App) -> Callable[[Job], Job]:
    """A job caught sending while the worker stops ends quietly instead of crashing the worker.

    Stopping, Faust stops the producer before it cancels timers and tasks, so a send in flight
    then fails (NotReady, or ProducerSendError for a closed producer). Nothing is lost: records are
    sent again by the next worker's publisher, and a breach transition that failed here never reached
    the alerts topic, from which the next worker restores the open breaches and judges them again."""
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
