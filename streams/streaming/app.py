"""The Faust app: topics, tables, the two agents, the watermark tick and the publisher.

The agents are thin: each hands raw bytes to a stage object (`TrackingStage`, `RegionalStage`)
that holds the logic, and sends what the stage returns. Values are raw bytes + orjson rather
than Faust models, which cost ~10x the JSON parse per event.
"""

from __future__ import annotations

import asyncio
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
from streams.core.timefmt import now_ms
from streams.exposition import Exposition
from streams.streaming.credentials import faust_broker_options
from streams.streaming.regional import RegionalStage, record_key
from streams.streaming.rollup import CountryRollup
from streams.streaming.sensors import install_metrics_page
from streams.streaming.tracking import TrackingStage, encode_tick
from streams.streaming.watchdog import PartitionGuard

log = logging.getLogger(__name__)
Job = Callable[..., Awaitable[None]]

#: after a publishing round of d seconds, wait this many times d before the next
PUBLISH_PAUSE_FACTOR = 4.0
#: stage one sends its batched facts once this many events are waiting, or after this long
FACTS_BATCH_EVENTS = 500
FACTS_BATCH_INTERVAL_S = 0.05
#: the producer waits this long to fill a batch: a changelog write per event otherwise leaves as
#: many small requests, and the worker spends its time sending them (benchmarks/README.md)
PRODUCER_LINGER_MS = 30
#: how often the partition guard looks for partitions to rewind, and for stalled ones (see watchdog)
REWIND_CHECK_INTERVAL_S = 1.0
STALL_CHECK_INTERVAL_S = 5.0


@dataclasses.dataclass
class Worker:
    """The app and the stages it drives, so tests and the CLI can reach them."""

    app: faust.App
    tracking: TrackingStage
    regional: RegionalStage
    exposition: Exposition


class ServiceWorker(faust.Worker):
    """Faust's worker without its terminal spinner. To spin on every log record, the spinner sets
    the root logger to DEBUG, so every debug call in Faust and aiokafka (one per message sent)
    builds a record that no handler prints; a service has no terminal to spin on."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None


def build_app(settings: Settings, *, web_port: int | None = None, datadir: str | None = None,
              store: str | None = None) -> Worker:
    topics = settings.topics
    worker = settings.worker
    partitions = topics.partitions
    app = faust.App(
        worker.app_id,
        broker=f"kafka://{settings.kafka.bootstrap_servers}",
        store=store or worker.store,
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
        table_standby_replicas=worker.standby_replicas,
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
    facts_topic = app.topic(topics.name("facts"), partitions=partitions, acks=False)
    metrics_topic = app.topic(topics.name("metrics"), partitions=partitions)
    alerts_topic = app.topic(topics.name("alerts"), partitions=partitions)
    dlq_topic = app.topic(topics.name("events.dlq"), partitions=partitions)
    rollup_topic = app.topic(topics.name("rollup"), partitions=1, internal=True, acks=False, compacting=True,
                             deleting=True, retention=settings.pipeline.retention_horizon_s + 6 * 3600)

    state_schema = faust.Schema(key_type=str, key_serializer="json", value_serializer="json")
    contacts = app.Table("contacts", default=None, partitions=partitions, schema=state_schema)
    tickets = app.Table("tickets", default=None, partitions=partitions, schema=state_schema)
    tracking = TrackingStage(settings, contacts, tickets, partitions)
    regional = RegionalStage(settings, observer=exposition.observe, region_event=exposition.region_event)
    country: dict[str, Any] = {"rollup": CountryRollup(settings), "owned": False}

    quiet_when_stopping = _quiet_when_stopping(app)

    #: events handled whose facts wait in stage one's batch; acked once the batch is sent
    unacked: list[faust.EventT] = []
    batch_lock = asyncio.Lock()
    acking: dict[str, faust.StreamT] = {}

    @quiet_when_stopping
    async def send_facts() -> None:
        """Hand the batched facts to the producer, then ack the events they came from: Faust's
        commit flushes the producer first, so a committed offset never passes facts never sent.
        The lock keeps batches in order (stage two drops positions older than what it applied)."""
        async with batch_lock:
            messages, events = tracking.take_facts(), unacked[:]
            unacked.clear()
            for partition, value in messages:
                await facts_topic.send(value=value, partition=partition)
            for event in events:
                await acking["stream"].ack(event)

    @app.agent(events_topic)
    @quiet_when_stopping
    async def track(stream: faust.StreamT) -> None:
        """Stage one: validate, deduplicate and track contacts; facts go out batched per facts partition.

        Events are iterated one by one (table writes need Faust's current event) but acked by
        `send_facts`, after their facts have been sent."""
        manual = acking["stream"] = stream.noack()
        async for event in manual.events():
            message = event.message
            outcome = tracking.handle(event.value, message.partition, message.offset)
            exposition.event_result(outcome.result, outcome.reason)
            if outcome.dead_letter is not None:
                await dlq_topic.send(key=message.key, value=outcome.dead_letter)
            if outcome.event_ts is not None:
                exposition.event_lag((now_ms() - outcome.event_ts) / 1000)
                exposition.set_watermark(tracking.watermark.value)
            unacked.append(event)
            if len(unacked) >= FACTS_BATCH_EVENTS:
                await send_facts()

    @app.task
    async def send_batched_facts() -> None:
        """A batch waits at most FACTS_BATCH_INTERVAL_S when events come slowly.

        Not a timer, whose loop ends as soon as the worker starts stopping: Faust then waits for
        every handled event to be acked before its last commit (and before a rebalance), so this
        loop must go on acking until the worker cancels it, after the consumer has stopped. (Under
        load a send also outlasts the interval, which a timer logs as a warning every time.)"""
        while True:
            await asyncio.sleep(FACTS_BATCH_INTERVAL_S)
            if unacked:
                await send_facts()

    @app.agent(facts_topic)
    async def aggregate(stream: faust.StreamT) -> None:
        """Stage two: count facts into the region's buckets."""
        async for event in stream.events():
            message = event.message
            if message.partition not in regional.partitions:
                log.info("facts partition %d: rebuilding from offset %d", message.partition, message.offset)
            regional.handle(event.value, message.partition, message.offset)

    @app.agent(rollup_topic)
    async def roll_up(stream: faust.StreamT) -> None:
        """The country rollup: merge every region's buckets into region=ALL."""
        async for event in stream.events():
            country["rollup"].handle(event.value, event.message.offset)

    last_tick: dict[str, int | None] = {"watermark": None}

    @app.timer(interval=1.0)
    @quiet_when_stopping
    async def tick() -> None:
        """Send the watermark to every facts partition, so every region sees time pass; tell stage
        one which events are committed (what they produced need not be kept for redelivery)."""
        tracking.commit(_committed(app, events_topic))
        await send_facts()  # facts counted before this watermark reach stage two before it
        watermark = tracking.watermark.value
        if watermark is None or watermark == last_tick["watermark"]:
            return
        last_tick["watermark"] = watermark
        value = encode_tick(watermark)
        for partition in range(partitions):
            await facts_topic.send(value=value, partition=partition)

    @app.timer(interval=settings.pipeline.ticket_refresh_s)
    @quiet_when_stopping
    async def restate_open_tickets() -> None:
        """Keep long-open tickets within the facts topic's retention (see TrackingStage)."""
        await send_facts()
        for key, value in tracking.open_ticket_messages():
            await facts_topic.send(key=key, value=value)

    pacing = {"not_before": 0.0}

    @app.timer(interval=settings.pipeline.publish_interval_s)
    @quiet_when_stopping
    async def publish() -> None:
        """Publish changed records (at most once per interval per key) and breach transitions.

        Building every record of a busy worker can take a good part of a second; a round that took
        d seconds is followed by a pause of PUBLISH_PAUSE_FACTOR * d, so publishing never takes more
        than a fifth of the event loop and a backlog is still consumed at full speed."""
        started = time.monotonic()
        if started < pacing["not_before"]:
            return
        caught_up = {number: _caught_up(app, facts_topic, number, state.next_offset)
                     for number, state in regional.partitions.items()}
        publication = regional.collect(caught_up)
        records = publication.records
        rollup = country["rollup"]
        if country["owned"] and rollup.as_of is not None and _caught_up(app, rollup_topic, 0, rollup.next_offset):
            records = records + rollup.collect()
        exposition.set_records(records)
        for record in records:
            await metrics_topic.send(key=record_key(record).encode(), value=orjson.dumps(record))
        for alert in publication.alerts:
            await alerts_topic.send(key=f"{alert['region']}|{alert['channel']}".encode(), value=orjson.dumps(alert))
        for key, value in publication.rollup:
            await rollup_topic.send(key=key, value=value, partition=0)
        finished = time.monotonic()
        pacing["not_before"] = finished + PUBLISH_PAUSE_FACTOR * (finished - started)

    def handled() -> dict[str, dict[int, int]]:
        """The next offset each agent will handle, by topic and partition (events: as committed)."""
        return {events_topic.get_topic_name(): _committed(app, events_topic),
                facts_topic.get_topic_name(): {n: state.next_offset for n, state in regional.partitions.items()},
                rollup_topic.get_topic_name(): {0: country["rollup"].next_offset}}

    guard = PartitionGuard(app, handled, exposition.set_stalled_partitions)

    @app.task
    async def rewind_after_rebalance() -> None:
        await guard.keep_rewinding(REWIND_CHECK_INTERVAL_S)

    app.timer(interval=STALL_CHECK_INTERVAL_S)(guard.check)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        """Stage one's expiry index is rebuilt from its table on next use."""
        tracking.revoke(tp.partition for tp in revoked if tp.topic == events_topic.get_topic_name())

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

    return Worker(app=app, tracking=tracking, regional=regional, exposition=exposition)


def _quiet_when_stopping(app: faust.App) -> Callable[[Job], Job]:
    """A job caught sending while the worker stops ends quietly instead of crashing the worker.

    Stopping, Faust stops the producer before it cancels timers and agents, so a send in flight
    then fails (NotReady, or ProducerSendError for a closed producer). Nothing is lost: unsent
    facts belong to unacked events, read again at the next start; ticks and records are sent
    again by the next worker's timers."""
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


def _committed(app: faust.App, topic: faust.TopicT) -> dict[int, int]:
    """The offsets this worker has committed, by partition. Faust keeps them only in its consumer's
    `_committed_offset`; were that attribute gone, nothing would be reported and stage one would
    keep its redelivery entries until the contacts are released (more memory, same results)."""
    name = topic.get_topic_name()
    committed = getattr(app.consumer, "_committed_offset", {})
    return {tp.partition: offset for tp, offset in list(committed.items()) if tp.topic == name and offset is not None}


def _caught_up(app: faust.App, topic: faust.TopicT, partition: int, next_offset: int) -> bool:
    """True once a partition rebuilt from its start has reached the end known to the consumer; not
    before the first fetch has told the consumer where that end is."""
    tp = TP(topic.get_topic_name(), partition)
    if tp not in app.consumer.assignment():
        return False  # lost in a rebalance whose handler has not run yet (highwater would assert)
    highwater = app.consumer.highwater(tp)
    return highwater is not None and next_offset >= highwater


