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

Output
------
Delivery records and set-aside events are written with confluent-kafka (librdkafka), not
Faust's ``Topic.send``: see ``RecordSink``.

Guarantees
----------
At-least-once. ``processing_guarantee="exactly_once"`` has open duplicate and crash bugs in
faust-streaming, and agent ``concurrency > 1`` can commit past in-flight messages (#606), so the
agent runs with concurrency 1 and takes events in batches: each batch's delivery records are
sent and *acknowledged by the broker* (``RecordSink.flush``) before the batch's events are
acked, and Faust commits only acked offsets. A worker killed at any moment re-reads at most
the uncommitted tail; the records it writes again carry the same deterministic delivery ids.

A batch whose records the broker did not acknowledge (refused, or not acknowledged within the
producer's delivery timeout) stops the worker, with exit status 1 and a critical log line: the
acker acks nothing from that batch on, so no offset past the unacknowledged event is committed,
and the next start reads those events again. (Restarting only the agent, Faust's default, would
go on past events that can never be acked.) A full producer queue is waited out with
``asyncio.sleep``, never a blocking sleep, so the consumer's heartbeats go on.

Size: an event larger than ``Settings.max_event_bytes`` (written by a producer that ignores the
limit) is set aside on ``events.invalid`` with code ``too_large``, never fanned out; so is one
within the limit whose delivery record would still be over the producer's message size
(``RECORD_BYTES_MAX``: numbers re-encode longer). A set-aside record that would be too large
itself carries a reference and an excerpt instead of the value, and a key over 64 KiB travels
as its SHA-256 (``invalid_record``, ``invalid_key``): no event can make its own set-aside record
unsendable, which would stop the worker at it on every start.

Nothing an event contains stops the worker or restarts the agent: ``EventHandler`` sets aside
what it cannot handle, an unexpected exception included (``internal_error``). Only a set-aside
that itself fails, like a batch the broker refuses, stops the worker (exit 1, nothing committed
past the batch).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import signal
import threading
from collections.abc import Callable

import faust
import mode
from confluent_kafka import KafkaException, Producer
from prometheus_client import Counter

from hookstream.core.errors import BrokerError
from hookstream.core.settings import Settings
from hookstream.core.fsperm import private_dir
from hookstream.subscriptions.view import FollowerThread, SubscriptionTable, table_for
from hookstream.core.topics import DELIVERIES, EVENT_TOPICS, INVALID_EVENTS
from hookstream.schemas import InvalidEventError, parse_event
from hookstream.streams import lean
from hookstream.streams.fanout import RECORD_BYTES_MAX, deliveries_for, invalid_key, invalid_record

log = logging.getLogger("hookstream.streams")

EVENTS_CONSUMED = Counter("hookstream_stream_events_total", "Events read by the stream worker.", ["event"])
DELIVERIES_EMITTED = Counter("hookstream_stream_deliveries_emitted_total", "Delivery records written.", ["event"])
INVALID_EVENTS_TOTAL = Counter("hookstream_stream_invalid_events_total", "Events set aside as unreadable.", ["reason"])

# Larger batches amortise the wait for the broker's acknowledgement of each batch's output
# (measured: 1000 -> 4000 took one worker from ~3,300 to ~3,850 events/s; docs/benchmarks.md).
BATCH_MAX = 4000
BATCH_WITHIN = 0.005  # seconds: the latency a partial batch may add (20 ms -> 5 ms: latency p50 27.6 -> 19.0 ms at 1,000/s)
# batches whose records are sent but not yet acknowledged by the broker, at most: the agent takes
# the next batch while the broker acknowledges earlier ones instead of waiting for each in turn
MAX_PENDING = 8


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
        self.table = table_for(settings)
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


class Batch:
    """The records of one batch of events, and whether the broker acknowledged all of them.

    ``sent`` is counted on the event loop, ``acked`` and ``errors`` in the producer's poll
    thread (each counter has one writer); whichever side sees the last acknowledgement after
    ``close`` resolves ``durable`` on the loop.
    """

    __slots__ = ("sink", "sent", "acked", "total", "errors", "durable", "on_delivery", "backlog", "_produce")

    def __init__(self, sink: "RecordSink", loop: asyncio.AbstractEventLoop) -> None:
        self.sink = sink
        self.sent = 0
        self.acked = 0
        self.total: int | None = None
        self.errors: list[str] = []
        self.durable: asyncio.Future = loop.create_future()
        self.on_delivery = self._on_delivery  # one bound method for every record of the batch
        self.backlog: collections.deque = collections.deque()  # records waiting for room in the producer's queue
        self._produce = sink.producer.produce

    def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Hand a record to the producer; if its queue is full, keep it (and every later record, to
        keep their order) in ``backlog`` for ``drain_backlog`` to send without blocking the loop."""
        if self.backlog:
            self.backlog.append((topic, key, value))
            return
        try:
            self._produce(topic, value, key, on_delivery=self.on_delivery)
        except BufferError:
            self.backlog.append((topic, key, value))
            return
        except KafkaException as exc:  # refused by produce() itself (too large, unknown topic, ...)
            self.errors.append(f"{topic}: {exc.args[0].str() if exc.args else exc}")
            return
        self.sent += 1

    async def drain_backlog(self) -> None:
        """Send the backlog in order, waiting asynchronously while the producer's queue is full."""
        while self.backlog:
            topic, key, value = self.backlog[0]
            try:
                self._produce(topic, value, key, on_delivery=self.on_delivery)
            except BufferError:  # the poll thread drains the queue meanwhile; heartbeats go on
                await asyncio.sleep(0.005)
                continue
            except KafkaException as exc:
                self.errors.append(f"{topic}: {exc.args[0].str() if exc.args else exc}")
            else:
                self.sent += 1
            self.backlog.popleft()

    def close(self) -> asyncio.Future:
        """No more records: ``durable`` resolves once every one sent was acknowledged (or failed)."""
        self.total = self.sent
        if self.acked == self.total:
            self._resolve()
        return self.durable

    def _on_delivery(self, err, msg) -> None:  # the poll thread (or the loop, in close()'s flush)
        if err is not None:
            self.errors.append(f"{msg.topic() if msg is not None else '?'}: {err.str()}")  # never raise on the poll thread
        self.acked += 1
        if self.acked == self.total:
            self.sink.loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        if not self.durable.done():
            if self.errors:
                self.durable.set_exception(BrokerError(f"{len(self.errors)} delivery record(s) refused by the broker: {self.errors[:3]}"))
                # retrieved here: the acker reports the first failed batch and stops, and the
                # batches behind it are never awaited (asyncio would log each as a traceback)
                self.durable.exception()
            else:
                self.durable.set_result(None)


def producer_overrides() -> dict[str, object]:
    """What the stream worker's producer changes in ``hookstream.core.kafka.producer_config``:
    the shell builds it, ``make_producer(settings, **producer_overrides())``, and hands it to
    ``create_app``."""
    return {"linger.ms": 2, "client.id": "hookstream-streams"}


class RecordSink:
    """Where the agent's output goes: an idempotent confluent-kafka producer (librdkafka), built by
    the caller (``producer_overrides``).

    Faust's own ``Topic.send`` cost ~150 µs of Python per record; librdkafka's ``produce`` a few.
    Records are sent in ``Batch``es; a thread polls the producer, so acknowledgements arrive
    while the event loop goes on with the next batch, and a batch's ``durable`` future says when
    all its records are safe (the agent acks the batch's events only then).
    """

    def __init__(self, settings: Settings, producer: Producer) -> None:
        self.producer = producer
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._poller is None:
            self.loop = loop
            self._poller = threading.Thread(target=self._poll, name="streams-producer-poll", daemon=True)
            self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    def batch(self) -> Batch:
        return Batch(self, self.loop)

    def close(self) -> None:
        """Wait (bounded) for what was sent, then stop polling."""
        self.producer.flush(30)
        self._stop.set()
        if self._poller is not None:
            self._poller.join(5)


class EventHandler:
    """One event in; out to a ``Batch``: its delivery records, or one set-aside record.

    ``handle`` raises for nothing an event can contain. What the event itself makes unusable
    (not JSON, invalid, too large, too deep, delivery records over the producer's limit) is set
    aside with its code; anything else raised while handling it (a bug meeting an input nobody
    foresaw) sets that one event aside as ``internal_error``, with the traceback logged the first
    time per exception type. Restarting the agent instead (Faust's default) would go on past a
    batch that is never acked, and a worker that stopped would meet the same event on restart.
    """

    def __init__(self, settings: Settings, table: SubscriptionTable) -> None:
        self.table = table
        self.deliveries_topic, self.invalid_topic = settings.topic(DELIVERIES), settings.topic(INVALID_EVENTS)
        self.max_event_bytes = settings.max_event_bytes
        self._series: dict[str, tuple] = {}
        self._traced: set[type] = set()  # exception types whose traceback was logged

    def handle(self, message, batch: Batch) -> None:
        try:
            self._process(message, batch)
        except Exception as exc:
            self._internal_error(message, batch, exc)

    def _process(self, message, batch: Batch) -> None:
        value = message.value
        if value is not None and len(value) > self.max_event_bytes:  # from a producer that ignores the limit
            self._set_aside(message, batch, "too_large", f"too_large: the event is {len(value)} bytes, over the limit of "
                                                         f"{self.max_event_bytes} bytes (HOOKSTREAM_MAX_EVENT_BYTES)")
            return
        try:
            event = parse_event(value)
        except InvalidEventError as exc:
            self._set_aside(message, batch, exc.code, exc.reason)
            return
        consumed, emitted = self._series_of(event.type)
        consumed.inc()
        records = deliveries_for(event, event.to_dict(), self.table.for_tenant(event.tenant_id))
        if not records:
            return
        # every record encoded and measured before any is sent: an event is fanned out whole or set aside
        encoded = [(rec.subscription_id.encode(), rec.to_bytes()) for rec in records]
        size = max(len(key) + len(record) for key, record in encoded)
        if size > RECORD_BYTES_MAX:  # an event within the limit that re-encodes larger (1e9 -> 1000000000.0)
            self._set_aside(message, batch, "too_large", f"too_large: its delivery record would be {size} bytes, over "
                                                         f"the producer's limit of {RECORD_BYTES_MAX} bytes")
            return
        for key, record in encoded:
            batch.send(self.deliveries_topic, key, record)
        emitted.inc(len(records))

    def _set_aside(self, message, batch: Batch, code: str, reason: str) -> None:
        INVALID_EVENTS_TOTAL.labels(code).inc()
        log.warning("set aside %s[%d]@%d: %s", message.topic, message.partition, message.offset, reason)
        record = invalid_record(message.value, reason, topic=message.topic, partition=message.partition,
                                offset=message.offset, key=message.key, code=code)
        batch.send(self.invalid_topic, invalid_key(message.key), record)

    def _internal_error(self, message, batch: Batch, exc: Exception) -> None:
        if type(exc) not in self._traced and len(self._traced) < 100:  # bounded: a flood of one kind logs one traceback
            self._traced.add(type(exc))
            log.error("internal error handling %s[%d]@%d; setting it aside", message.topic, message.partition,
                      message.offset, exc_info=exc)
        detail = " ".join(str(exc).split())[:200]
        self._set_aside(message, batch, "internal_error", f"internal_error: {type(exc).__name__}: {detail}")

    def _series_of(self, event_type: str) -> tuple:
        """The metric children of one event type, looked up once (``labels()`` takes a lock)."""
        found = self._series.get(event_type)
        if found is None:
            found = self._series[event_type] = (EVENTS_CONSUMED.labels(event_type), DELIVERIES_EMITTED.labels(event_type))
        return found


async def run_batches(batches, handler: EventHandler, sink: RecordSink, ack, stop: Callable[[Exception], None]) -> None:
    """The stream agent's loop: each batch of events (``batches``, an async iterator of lists of
    Faust events) is handled into one ``Batch`` of records, and its events are acked (``await
    ack(event)``) only once the broker acknowledged every record of it, batches in order. The
    next batch is taken while the broker acknowledges earlier ones (``MAX_PENDING`` at most).

    A batch the broker refuses (or that could not even be handled) calls ``stop`` and is never
    acked, nor is any batch after it, so no offset past it is committed."""
    # (events, durable) in the order sent; the acker acks each batch's events once it is durable
    pending: asyncio.Queue = asyncio.Queue(maxsize=MAX_PENDING)
    acker = asyncio.ensure_future(_ack_durable(pending, ack, stop))
    try:
        async for events_ in batches:
            if acker.done():
                break  # a batch was not durable: the worker is stopping (stop); take no more
            batch = sink.batch()
            try:
                for ev in events_:
                    handler.handle(ev.message, batch)
                    if batch.backlog:  # the producer's queue is full: wait without blocking the loop
                        await batch.drain_backlog()
            except Exception as exc:  # not even set aside: this batch is never acked (see stop)
                log.exception("could not process or set aside an event")
                stop(exc)
                break
            await pending.put((events_, batch.close()))
    finally:
        # stopping or rebalancing: let the acker ack what becomes durable within a few seconds,
        # so those offsets get committed; the rest is read again by the partition's next owner
        # (with the same delivery ids)
        try:
            pending.put_nowait(None)
            await asyncio.wait_for(asyncio.shield(acker), 5.0)
        except (asyncio.QueueFull, asyncio.TimeoutError, asyncio.CancelledError, BrokerError):
            pass
        acker.cancel()


async def _ack_durable(pending: asyncio.Queue, ack, stop: Callable[[Exception], None]) -> None:
    while (item := await pending.get()) is not None:
        events_, durable = item
        try:
            await durable
        except BrokerError as exc:
            stop(exc)
            return  # nothing from this batch on is acked, so no offset past it is committed
        for ev in events_:
            await ack(ev)


def create_app(settings: Settings, *, producer: Producer) -> faust.App:
    """The stream worker's Faust app for ``settings`` (the shell's, ``hookstream streams worker``),
    writing its records with ``producer`` (``make_producer(settings, **producer_overrides())``)."""
    private_dir(settings.state_dir / "streams")
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
        # a crashed worker's partitions move on after 10 s instead of Faust's default 60 s
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        stream_buffer_maxsize=16384,
        broker_max_poll_records=4000,
        consumer_max_fetch_size=8 * 1024 * 1024,
        producer_acks=-1,
        producer_linger=0.005,
        key_serializer="raw",
        value_serializer="raw",
        Monitor=lean.QuietMonitor,  # streams/lean.py: Faust's per-event costs we do not need
    )
    lean.install(app)
    view = SubscriptionView(settings)
    events = app.topic(*(settings.topic(t) for t in EVENT_TOPICS.values()), schema=lean.RawBytes())
    out = RecordSink(settings, producer)
    handler = EventHandler(settings, view.table)

    @app.service
    class _FollowSubscriptions(mode.Service):
        """Starts and stops the subscription view with the worker."""

        async def on_start(self) -> None:
            view.start()

        async def on_stop(self) -> None:
            view.stop()
            out.close()

    @app.timer(1.0)
    async def _watch_view() -> None:
        view.check()

    @app.agent(events, concurrency=1)
    async def fan_out(stream):
        await view.wait_ready()
        out.start(asyncio.get_running_loop())
        await run_batches(stream.noack_take(BATCH_MAX, within=BATCH_WITHIN), handler, out, stream.ack, _stop_worker)

    def _stop_worker(exc: Exception) -> None:
        log.critical(
            "stopping the stream worker: %s; no offset past this batch is committed, and the next start "
            "reads its events again", exc,
        )
        app.hookstream_failure = exc
        # the batch's events will never be acked: a stop that waits for every taken event to be
        # acked (Faust's wait_empty) would wait for ever; committing what is acked is what is safe
        app.conf.stream_wait_empty = False
        app.hookstream_stop()

    app.hookstream_view = view  # for tests and the CLI
    app.hookstream_failure = None  # what stopped the worker (a BrokerError, or a set-aside that failed), if anything did: exit status 1
    # the same graceful stop as SIGTERM: leave the group, commit what was acked (durable only)
    app.hookstream_stop = lambda: os.kill(os.getpid(), signal.SIGTERM)
    return app

