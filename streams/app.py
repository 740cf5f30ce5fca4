"""The Faust app: read the event topics, look up the tenant's subscriptions, fan out deliveries.

How the subscriptions "join" works, and why
-------------------------------------------
faust-streaming has no declarative ``Table.join``; the lookup happens inside the agent. Three
ways to hold the subscriptions were weighed:

* ``GlobalTable`` fed from the subscriptions topic: every worker gets every row, which is what a
  lookup by tenant needs, but with several workers faust-streaming's global-table recovery can
  loop or stall on rebalance (faust-streaming #283), and its changelog is a second copy of a
  topic that is already compacted.
* A tenant-keyed ``Table`` with events repartitioned by tenant: each worker holds only its
  tenants, but every event takes an extra topic hop (latency, double writes), a hot tenant pins
  one partition, and table recovery after a rebalance pauses processing.
* An in-process view (chosen): each worker follows the compacted ``subscriptions`` topic itself,
  with a plain consumer outside any group (every partition, from the beginning), like Kafka
  Streams' GlobalKTable. Rebalances of the event topics never touch it, there is nothing to
  recover but a re-read of a small compacted topic, and a change reaches every worker within
  a poll interval (well under the 2 s the design allows). The agent waits until the view has
  caught up with the topic before it processes its first event, so a restart never fans out
  against an empty table.

Guarantees
----------
At-least-once. ``processing_guarantee="exactly_once"`` has open duplicate and crash bugs in
faust-streaming, and agent ``concurrency > 1`` can commit past in-flight messages (#606), so the
agent runs with concurrency 1 and takes events in batches: each batch's delivery records are
sent and *acknowledged by the broker* before the batch's events are acked, and Faust commits
only acked offsets (flushing its producer first). A worker killed at any moment re-reads at most
the uncommitted tail; the records it writes again carry the same deterministic delivery ids.
"""

from __future__ import annotations

import asyncio
import logging

import faust
import mode
from prometheus_client import Counter

from hookstream.settings import Settings
from hookstream.subscriptions.view import FollowerThread, SubscriptionTable
from hookstream.topics import DELIVERIES, EVENT_TOPICS, INVALID_EVENTS
from schemas import InvalidEventError, parse_event
from streams.fanout import deliveries_for, invalid_record

log = logging.getLogger("hookstream.streams")

EVENTS_CONSUMED = Counter("hookstream_stream_events_total", "Events read by the stream worker.", ["event"])
DELIVERIES_EMITTED = Counter("hookstream_stream_deliveries_emitted_total", "Delivery records written.", ["event"])
INVALID_EVENTS_TOTAL = Counter("hookstream_stream_invalid_events_total", "Events set aside as unreadable.", ["reason"])

BATCH_MAX = 1000
BATCH_WITHIN = 0.02  # seconds: the latency a partial batch may add


def group_id(settings: Settings) -> str:
    return f"{settings.topic_prefix}hookstream-streams"


class SubscriptionView:
    """The worker's copy of the subscriptions topic, followed on a background thread.

    A follower that dies (the broker gone for longer than its client retries) is restarted on
    the same table: the table keeps the highest version per id, so reading the topic again from
    the beginning is harmless, and the worker never goes on silently with a frozen table.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.table = SubscriptionTable()
        self.follower = FollowerThread(settings, self.table)
        self._started = False

    def start(self) -> None:
        self.follower.start()
        self._started = True

    def stop(self) -> None:
        self.follower.stop()

    def check(self) -> None:
        if self._started and not self.follower.alive:
            log.error("subscriptions follower stopped (%s); starting a new one", self.follower.error)
            self.follower = FollowerThread(self.settings, self.table).start()

    async def wait_ready(self) -> None:
        while not (self._started and self.follower.ready.is_set()):
            self.check()
            await asyncio.sleep(0.05)


def create_app(settings: Settings) -> faust.App:
    (settings.state_dir / "streams").mkdir(parents=True, exist_ok=True)
    app = faust.App(
        group_id(settings),
        broker=";".join(f"kafka://{hp.strip()}" for hp in settings.kafka_bootstrap.split(",")),
        store="memory://",
        datadir=str(settings.state_dir / "streams"),
        web_enabled=False,
        topic_disable_leader=True,
        topic_allow_declare=False,  # `hookstream topics ensure` owns topic configuration
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        producer_acks=-1,
        producer_linger=0.005,
        key_serializer="raw",
        value_serializer="raw",
    )
    view = SubscriptionView(settings)
    events = app.topic(*(settings.topic(t) for t in EVENT_TOPICS.values()), key_type=bytes, value_type=bytes)
    deliveries = app.topic(settings.topic(DELIVERIES), key_type=bytes, value_type=bytes)
    invalid = app.topic(settings.topic(INVALID_EVENTS), key_type=bytes, value_type=bytes)

    @app.service
    class _FollowSubscriptions(mode.Service):
        """Starts and stops the subscription view with the worker."""

        async def on_start(self) -> None:
            view.start()

        async def on_stop(self) -> None:
            view.stop()

    @app.timer(1.0)
    async def _watch_view() -> None:
        view.check()

    @app.agent(events, concurrency=1)
    async def fan_out(stream):
        await view.wait_ready()
        async for batch in stream.take_events(BATCH_MAX, within=BATCH_WITHIN):
            pending = []
            for ev in batch:
                pending += await _process(ev.message)
            # durable before the batch's offsets may be committed (take_events acks after this body)
            if pending:
                await asyncio.gather(*pending)

    async def _process(message) -> list:
        value = message.value
        try:
            event = parse_event(value)
        except InvalidEventError as exc:
            INVALID_EVENTS_TOTAL.labels(exc.code).inc()
            log.warning("set aside %s[%d]@%d: %s", message.topic, message.partition, message.offset, exc.reason)
            record = invalid_record(value, exc.reason, topic=message.topic, partition=message.partition, offset=message.offset, key=message.key)
            return [await invalid.send(key=message.key, value=record)]
        EVENTS_CONSUMED.labels(event.type).inc()
        sends = []
        for rec in deliveries_for(event, event.to_dict(), view.table.for_tenant(event.tenant_id)):
            sends.append(await deliveries.send(key=rec.subscription_id.encode(), value=rec.to_bytes()))
        if sends:
            DELIVERIES_EMITTED.labels(event.type).inc(len(sends))
        return sends

    app.hookstream_view = view  # for tests and the CLI
    return app


def __getattr__(name: str):
    """``streams.app.app``: the app for the environment's settings, built on first access
    (not at import), for ``faust -A streams.app worker``."""
    if name == "app":
        global app
        app = create_app(Settings.from_env())
        return app
    raise AttributeError(name)
