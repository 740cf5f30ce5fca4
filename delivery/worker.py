"""``hookstream delivery worker``: consume delivery records, POST them, retry through tier topics.

Shape (after Svix's worker)
---------------------------
The Kafka loop only consumes, bounds concurrency and commits. Each record becomes a task running
``Deliverer.deliver`` (prepare -> call -> classify, in ``delivery.attempt``), whose typed
``Decision`` this module *handles*: record the attempt, forward to a retry tier, dead-letter, or
drop. Everything runs on one asyncio event loop (uvloop) in one thread, so the consumer, the
offset trackers, the breakers and the gates need no locks; the HTTP client does its I/O on its
own Rust runtime, and the attempt log is written by its own thread.

One confluent-kafka consumer (manual commits, round-robin assignment) reads ``deliveries`` and every
retry tier topic ``deliveries.retry.N`` (N = 1 .. len(HOOKSTREAM_RETRY_SCHEDULE)). It is polled
without blocking (``consume(timeout=0)``) and the loop yields to the event loop in between: a few
milliseconds when nothing came, at once otherwise.

Retries without blocking
------------------------
A failed attempt forwards the record (new attempt in its history, ``due_at`` set) to the tier
chosen by its actual delay (``delivery.tiers``), and the source offset is committed once the
broker acknowledged the forward. A tier partition whose head record is not due yet is *paused*
and the consumer seeks back to that head; a timer on the event loop resumes it at the due time.
The poll loop itself never sleeps until a due time, and other partitions and topics keep flowing.

At-least-once
-------------
``delivery.offsets.PartitionOffsets`` per assigned partition: an offset is finished only when its
outcome is durable (a success's attempt row committed to the attempt log; a retry or dead-letter
record acknowledged by the broker through the producer's delivery callback, and its attempt row
written), and commits never pass the lowest unfinished offset. A SIGKILL at any moment loses
nothing: the records after the committed position are delivered again with the same
``webhook-id``. A producer or consumer error is an infrastructure error: the worker stops (exit
code 1) without finishing the record, and the next worker re-delivers it.

Flow control and isolation
--------------------------
At most ``concurrency`` records in flight per process: at the bound the loop stops taking records
(they wait in the client's fetch queue; no pause, so no re-fetch), polling only once a second so
rebalances are still served. Per
endpoint, ``Limits`` bounds requests in flight and records waiting; the circuit breaker skips
endpoints that are down. So a hung endpoint ties up at most its own slots for at most the
request timeout, and the healthy endpoints' records pass it by.

No record stops the worker
--------------------------
Unreadable records (not JSON, missing fields, wrong types, an id longer than its column, a
``delivery_id`` that is not the one its event id and subscription id give) are set aside on the dead-letter topic with the reason and
the original bytes (base64; a reference and an excerpt when they would not fit), and their
offsets move on. ``Deliverer.deliver`` dead-letters what must not be sent (another tenant's
subscription, a refused URL or header). An exception while handling one record (a bug a record
can trigger) dead-letters that record as ``internal_error``, logs its traceback (once per place
it came from) and counts it; only infrastructure errors stop the worker (a fatal Kafka error, a
broker that would not take a forward, the attempt-log writer gone): a log line,
``hookstream_delivery_worker_failures_total{kind}``, exit code 1, nothing committed past them.

Producing never blocks the loop and never loses a record: a full producer queue (``BufferError``)
parks the forward in a backlog the loop drains; a record the broker or the client refuses on its
own (key and value too large for ``message.max.bytes``, which librdkafka checks in produce(),
or for the topic's ``max.message.bytes``) is replaced on the dead-letter topic by a reference
(source topic/partition/offset, event id, delivery id) and a bounded excerpt (reason
``too_large``). A reference is small whatever the record held (its strings and key are cut), so
only a dead-letter topic that refuses even that stops the worker, as a Kafka error. The attempt history a record carries is bounded
(``delivery.attempt.bounded_history``), so retries alone never make a record too large.

Memory stays bounded however many endpoints a worker meets over its life: the deliverer forgets
idle endpoints (``delivery.attempt``) and tells this module, which drops their metric series
(``_forget_series``); the (event, tenant) series lookups age out in two generations.

410 Gone: the attempt dead-letters the record, logs a warning and counts
``hookstream_delivery_endpoint_gone_total``; the worker does not disable the subscription
itself (it has no write path to the store, and one 410 from a misrouted proxy should not turn an
endpoint off). Disabling is left to the operator or to automation on that metric, apart from
per-message retries, as Svix keeps it.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import signal
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from hookstream.delivery import metrics as m
from hookstream.delivery.attempt import DeadLetter, Decision, Delivered, Deliverer, Dropped, Limits, Retry
from hookstream.delivery.attempt_log import AttemptLogUnavailable, AttemptLogWriter, AttemptRow, row_values
from hookstream.delivery.breaker import BreakerConfig, EndpointBreakers
from hookstream.delivery.outcome import RetryReason
from hookstream.delivery.transport import PyreqwestTransport, Transport
from hookstream.core.errors import BrokerError
from hookstream.core.kafka import consumer_config, producer_config
from hookstream.core.wire import DeliveryRecord, delivery_id
from hookstream.core.settings import Settings
from hookstream.core.topics import DEAD_LETTERS, DELIVERIES, retry_topic

__all__ = ["MalformedRecord", "Worker", "decode_record", "group_id"]

log = logging.getLogger("hookstream.delivery")

CONSUME_BATCH = 500
IDLE_WAIT = 0.005  # seconds the loop yields when the consumer had nothing
COMMIT_INTERVAL = 0.2
LIVENESS_POLL = 1.0  # at the in-flight bound, still poll this often (rebalances, liveness)
DEFAULT_CONCURRENCY = 2000
SERIES_TTL = 300.0  # seconds an (event, tenant) series lookup is cached unused
EXCERPT_BYTES = 1024  # of a record set aside by reference
MAX_KEY_BYTES = 1024  # a set-aside record keeps its key up to this size
REF_KEY_BYTES = 256  # the key of a reference set aside instead of a record
PRODUCE_OVERHEAD = 1024  # room for headers and framing under message.max.bytes (the key is counted)
# errors of ONE record the broker or the client will never take; any other produce error that
# reaches the callback (librdkafka retried the retriable ones itself) means the broker is gone
_RECORD_ERRORS = frozenset({
    KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE,
    KafkaError.INVALID_RECORD,
})

_STR_FIELDS = ("delivery_id", "subscription_id", "tenant_id", "event_id", "event_type", "occurred_at")
# the most characters each may hold: the attempt log's columns, read from its table so the two
# cannot drift (subscription and delivery ids 64, as in the store; tenant, event id and type 128,
# as the envelope's schema allows), and 64 for occurred_at. A longer one is no record of ours,
# and unbounded it would make every key and reference too large to produce.
_MAX_CHARS = (*(AttemptRow.__table__.c[name].type.length for name in _STR_FIELDS[:5]), 64)
MAX_REPLAY_OF_CHARS = 128
REF_CHARS = 256  # each string a set-aside reference copies from a record, at most


def group_id(settings: Settings) -> str:
    return f"{settings.topic_prefix}hookstream-delivery"


class MalformedRecord(ValueError):
    """A delivery record that cannot be read; the message is the reason (never the value)."""


def decode_record(value: bytes | None) -> DeliveryRecord:
    """A ``DeliveryRecord`` from the wire, or ``MalformedRecord`` naming the first problem.

    Every record goes through here, so the checks are written for speed: orjson returns exact
    ``dict``/``list``/``str``/``int``/``float`` objects, so ``type(x) is T`` is the same test as
    ``isinstance`` (and keeps ``bool`` out of the numbers), and the record is made with
    ``DeliveryRecord.checked`` (no keyword ``__init__`` of a frozen dataclass)."""
    if value is None:
        raise MalformedRecord("the record has no value")
    try:
        raw = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise MalformedRecord("the value is not JSON") from None
    if type(raw) is not dict:
        raise MalformedRecord("the value is not a JSON object")
    get = raw.get
    strs = [get(name) for name in _STR_FIELDS]
    for name, v, most in zip(_STR_FIELDS, strs, _MAX_CHARS):
        if type(v) is not str or not v:
            raise MalformedRecord(f"{name} is missing or not a non-empty string")
        if len(v) > most:
            raise MalformedRecord(f"{name} has {len(v)} characters, more than {most}")
    event = get("event")
    if type(event) is not dict:
        raise MalformedRecord("event is missing or not an object")
    attempt = get("attempt", 0)
    if type(attempt) is not int or attempt < 0:
        raise MalformedRecord("attempt is not a non-negative integer")
    attempts = get("attempts") or []
    if type(attempts) is not list or not all(type(a) is dict for a in attempts):
        raise MalformedRecord("attempts is not a list of objects")
    due = get("due_at")
    if due is not None and type(due) is not float and type(due) is not int:
        raise MalformedRecord("due_at is not a number")
    replay = get("replay_of")
    if replay is not None and (type(replay) is not str or len(replay) > MAX_REPLAY_OF_CHARS):
        raise MalformedRecord(f"replay_of is not a string of at most {MAX_REPLAY_OF_CHARS} characters")
    # the id receivers deduplicate on: every writer (fan-out, dlq replay, recovery) derives it from
    # (event id, subscription id), so any other value is a forged or corrupted record, replays too
    if strs[0] != delivery_id(strs[3], strs[1]):
        raise MalformedRecord("delivery_id is not the one event_id and subscription_id give")
    for field, index in (("id", 3), ("tenant_id", 2), ("type", 4)):
        inner = event.get(field)
        if inner is not None and inner != strs[index]:
            raise MalformedRecord(f"event.{field} differs from the record's {_STR_FIELDS[index]}")
    return DeliveryRecord.checked(
        *strs, event, attempt, tuple(attempts),
        float(due) if due is not None else None,
        replay,
    )


def dead_letter_value(record: DeliveryRecord, reason: str, now: float) -> bytes:
    """The dead-letter record: the delivery record with every attempt, plus the final reason.
    ``DeliveryRecord.from_bytes`` reads it back (for replays); it never holds a secret."""
    doc = dataclasses.asdict(record)
    doc["due_at"] = None
    doc["reason"] = reason
    doc["dead_lettered_at"] = round(now, 3)
    return orjson.dumps(doc)


class _Series:
    """The labelled metric children of one (event, tenant), looked up once: ``labels()`` is a
    locked dict lookup, and the hot path would otherwise pay it four times per delivery."""

    __slots__ = ("succeeded", "failed", "dead", "duration", "retries")

    def __init__(self, event: str, tenant: str) -> None:
        self.succeeded = m.DELIVERIES.labels(event, tenant, "succeeded")
        self.failed = m.DELIVERIES.labels(event, tenant, "failed")
        self.dead = m.DELIVERIES.labels(event, tenant, "dead")
        self.duration = m.DURATION.labels(event, tenant)
        self.retries = {str(r): m.RETRIES.labels(event, tenant, str(r)) for r in RetryReason}


class _Completion:
    """Counts the acknowledgements one record's outcome needs before its offset may be committed."""

    __slots__ = ("worker", "part", "offset", "remaining")

    def __init__(self, worker: "Worker", part, offset: int, remaining: int) -> None:
        self.worker, self.part, self.offset, self.remaining = worker, part, offset, remaining

    def ack(self) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self.worker._finish(self.part, self.offset)


class _Out:
    """One record to produce: where, what its acknowledgement finishes, and where it came from
    (``src``: topic, partition, offset) should it have to be set aside by reference."""

    __slots__ = ("worker", "topic", "key", "value", "on_ack", "src", "record", "reason", "level")

    def __init__(self, worker: "Worker", topic: str, key: bytes | None, value: bytes, on_ack: Callable[[], None],
                 src: tuple[str, int, int], record: DeliveryRecord | None, reason: str | None = None, *, level: int = 0) -> None:
        self.worker, self.topic, self.key, self.value, self.on_ack = worker, topic, key, value, on_ack
        self.src, self.record, self.reason, self.level = src, record, reason, level  # level: 1, 2 = references

    def delivered(self, err, _msg) -> None:
        if err is None:
            self.on_ack()
        else:
            self.worker._refused(self, err)


def _bounded_key(key: bytes | None) -> bytes | None:
    return key if key is None or len(key) <= MAX_KEY_BYTES else key[:MAX_KEY_BYTES]


def _cut(text: str) -> str:
    """A string a reference copies from a record, at most REF_CHARS characters."""
    return text if len(text) <= REF_CHARS else text[:REF_CHARS] + "…"


def _origin(exc: BaseException) -> tuple[str, str, int]:
    """Where an exception was raised: its type and innermost frame (one traceback logged per place)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return type(exc).__qualname__, "", 0
    return type(exc).__qualname__, tb.tb_frame.f_code.co_filename, tb.tb_lineno


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        table,
        engine,
        transport: Transport | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        limits: Limits | None = None,
        breaker_config: BreakerConfig | None = None,
        group: str | None = None,
        follower_check: Callable[[], None] | None = None,
        producer_options: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.table = table
        self.engine = engine
        self.limits = limits or Limits()
        self.transport = transport or PyreqwestTransport(settings, max_connections_per_host=self.limits.endpoint_concurrency)
        self.concurrency = concurrency
        self.group = group or group_id(settings)
        self.follower_check = follower_check or (lambda: None)
        self.deliverer = Deliverer(
            settings, table, self.transport,
            breakers=EndpointBreakers(breaker_config or BreakerConfig.from_settings(settings)), limits=self.limits,
            on_attempt_start=m.IN_FLIGHT.inc, on_attempt_end=m.IN_FLIGHT.dec, on_forget=self._forget_series,
        )
        self.main_topic = settings.topic(DELIVERIES)
        self.tier_topics = [settings.topic(retry_topic(t)) for t in range(1, len(settings.retry_schedule) + 1)]
        self.dead_topic = settings.topic(DEAD_LETTERS)
        self.parts: dict[tuple[str, int], Any] = {}
        self.due_paused: dict[tuple[str, int], asyncio.TimerHandle] = {}
        self.in_flight = 0
        self.fatal: BaseException | None = None
        self._tasks: set[asyncio.Task] = set()
        self._breaker_shown: dict[str, int] = {}
        self._gone_tenant: dict[str, str] = {}  # subscription -> tenant, of the GONE series made
        # (event, tenant) -> its series; entries unused for a whole SERIES_TTL move to _series_old
        # and are dropped one SERIES_TTL later (two generations: no timestamp per delivery)
        self._series: dict[tuple[str, str], _Series] = {}
        self._series_old: dict[tuple[str, str], _Series] = {}
        self._series_aged_at = time.monotonic()
        self._statuses: dict[tuple[str, int], Any] = {}
        self._skip_series: dict[str, Any] = {}
        self.consumer: Consumer | None = None
        self.producer: Producer | None = None
        self.writer: AttemptLogWriter | None = None
        self.producer_config = producer_config(settings, **{"client.id": "hookstream-delivery", **(producer_options or {})})
        # the largest key + value produced as it is (librdkafka counts both against
        # message.max.bytes); a larger one is set aside by reference
        self.max_value_bytes = int(self.producer_config.get("message.max.bytes", 1_000_000)) - PRODUCE_OVERHEAD
        self._backlog: deque[_Out] = deque()
        self._bugs_logged: set[tuple[str, str, int]] = set()
        # a tier record due further ahead than any retry, breaker pause or Retry-After can put it
        # is not ours (a forged due_at would pause its partition for years)
        self.max_wait = 2 * max(max(settings.retry_schedule, default=0.0), 600.0) + 3600.0

    # ------------------------------------------------------------------ lifecycle
    async def run(self, stop: asyncio.Event, *, ready: Callable[[], None] | None = None) -> None:
        from hookstream.delivery.offsets import PartitionOffsets  # noqa: F401  (imported for the type in parts)

        self.loop = asyncio.get_running_loop()
        self.writer = AttemptLogWriter(self.engine, self.loop, max_outage=self.settings.attempt_log_max_outage_seconds).start()
        self.producer = Producer(self.producer_config)
        self.consumer = Consumer(
            consumer_config(self.settings, self.group, **{
                "client.id": "hookstream-delivery", "on_commit": self._on_commit,
                # round-robin, not cooperative-sticky: sticky balances the *count* of partitions
                # over all the topics, and with a second worker it moved only retry-tier
                # partitions, leaving every `deliveries` partition (all the live traffic) on the
                # first one (measured: 0.003 vs 0.19 CPU-s per 1,000 deliveries). Round-robin
                # deals each topic's partitions out in turn. The price is an eager rebalance:
                # records in flight when one starts may be delivered again (same webhook-id).
                "partition.assignment.strategy": "roundrobin",
            })
        )
        self.consumer.subscribe(
            [self.main_topic, *self.tier_topics],
            on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost,
        )
        log.info("delivery worker consuming %s and %d retry tier(s) in group %s", self.main_topic, len(self.tier_topics), self.group)
        if ready:
            ready()
        try:
            await self._loop(stop)
        finally:
            await self._shutdown()
        if isinstance(self.fatal, KafkaException):
            # an infrastructure error, not a bug: one line; unfinished records were not committed
            raise BrokerError(f"Kafka failed: {self.fatal.args[0].str()}; stopped, records in flight will be delivered again") from None
        if self.fatal is not None:
            raise self.fatal

    async def _loop(self, stop: asyncio.Event) -> None:
        next_commit = time.monotonic() + COMMIT_INTERVAL
        next_check = time.monotonic() + 1.0
        last_consume = time.monotonic()
        consumer, producer = self.consumer, self.producer
        while not stop.is_set() and self.fatal is None:
            producer.poll(0)
            if self._backlog:
                self._drain_backlog()
            room = self.concurrency - self.in_flight
            now = time.monotonic()
            msgs = ()
            if room > 0 or now - last_consume > LIVENESS_POLL:
                # at the bound, records wait in the client's fetch queue; one poll a second still
                # serves rebalances and keeps the member alive (it may admit a record or so more)
                msgs = consumer.consume(min(max(room, 1), CONSUME_BATCH), 0)
                last_consume = now
            for msg in msgs:
                self._accept(msg)
            if now >= next_commit:
                self._commit()
                next_commit = now + COMMIT_INTERVAL
            if now >= next_check:
                self._check_health()
                next_check = now + 1.0
            await asyncio.sleep(0 if msgs else IDLE_WAIT)

    async def _shutdown(self, grace: float | None = None) -> None:
        """Stop taking records, let those in flight finish (bounded), commit what is durable."""
        grace = self.settings.request_timeout_seconds + 5.0 if grace is None else grace
        consumer = self.consumer
        try:
            assignment = consumer.assignment()
            if assignment:
                consumer.pause(assignment)
        except KafkaException:
            pass
        deadline = time.monotonic() + grace
        while self.in_flight > 0 and time.monotonic() < deadline and self.fatal is None:
            self.producer.poll(0)
            self._drain_backlog()
            consumer.consume(CONSUME_BATCH, 0)  # serve callbacks; paused: returns nothing to act on
            await asyncio.sleep(0.01)
        for task in list(self._tasks):
            task.cancel()
        drain_until = time.monotonic() + 10
        while self._backlog and self.fatal is None and time.monotonic() < drain_until:
            self.producer.poll(0.05)
            self._drain_backlog()
        remaining = self.producer.flush(10) + len(self._backlog)
        if remaining:
            log.error("%d forwarded record(s) not acknowledged at shutdown; their offsets stay uncommitted", remaining)
        await asyncio.sleep(0)  # run attempt-log callbacks already queued
        self._commit(asynchronous=False)
        consumer.close()
        self.writer.stop()
        await self.transport.close()
        for handle in self.due_paused.values():
            handle.cancel()
        log.info("delivery worker stopped (%d record(s) left in flight)", self.in_flight)

    def _check_health(self) -> None:
        self._age_series(time.monotonic())
        self.follower_check()
        if not self.writer.alive:
            # AttemptLogUnavailable (the log stayed unwritable past its bound: one line, exit 1)
            # or a bug; rows not written were never acknowledged, so their offsets stay uncommitted
            error = self.writer.error or RuntimeError("the attempt-log writer stopped")
            what = str(error) if isinstance(error, AttemptLogUnavailable) else "the attempt-log writer stopped"
            self._fail(error, "attempt_log", what)

    # ------------------------------------------------------------------ consuming
    def _accept(self, msg) -> None:
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                return
            if err.fatal():
                self._fail(KafkaException(err), "kafka", f"consumer: {err.str()}")
            else:
                log.warning("consumer: %s", err.str())
            return
        tp = (msg.topic(), msg.partition())
        part = self.parts.get(tp)
        offset = msg.offset()
        if part is None or tp in self.due_paused:
            return  # revoked, or fetched past a paused head: read again after the resume
        if part.next_offset is not None and offset < part.next_offset:
            return  # a stale copy from before a seek
        try:
            record = decode_record(msg.value())
            wait = record.due_at - time.time() if record.due_at is not None and tp[0] != self.main_topic else 0.0
            if wait > self.max_wait:
                raise MalformedRecord(f"due_at is {wait:.0f}s ahead, more than any retry waits")
        except Exception as exc:  # MalformedRecord, or a bug a record found in decode_record
            part.take(offset)
            self.in_flight += 1
            why = str(exc) if isinstance(exc, MalformedRecord) else f"cannot be read ({type(exc).__name__})"
            self._set_aside(msg, why, part, offset)
            return
        if wait > 0:
            self._pause_until_due(tp, offset, wait, part)
            return
        part.take(offset)
        self.in_flight += 1
        task = self.loop.create_task(self._process(part, offset, record, tp))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _pause_until_due(self, tp: tuple[str, int], offset: int, wait: float, part) -> None:
        where = TopicPartition(tp[0], tp[1], offset)
        try:
            self.consumer.pause([where])
            self.consumer.seek(where)
        except KafkaException as exc:
            self._fail(exc, "kafka", f"pausing {tp[0]}[{tp[1]}] failed: {exc.args[0].str()}")
            return
        part.seek_back(offset)
        self.due_paused[tp] = self.loop.call_later(wait, self._resume_due, tp, part)

    def _resume_due(self, tp: tuple[str, int], part) -> None:
        if self.parts.get(tp) is not part:
            return  # revoked meanwhile
        del self.due_paused[tp]
        self._resume(tp, part)

    def _resume(self, tp: tuple[str, int], part) -> None:
        """Resume, and seek to where this worker stopped taking records: never past one not taken."""
        try:
            self.consumer.resume([TopicPartition(*tp)])
            if part.next_offset is not None:
                self.consumer.seek(TopicPartition(tp[0], tp[1], part.next_offset))
        except KafkaException as exc:
            self._fail(exc, "kafka", f"resuming {tp[0]}[{tp[1]}] failed: {exc.args[0].str()}")

    # ------------------------------------------------------------------ rebalancing
    def _on_assign(self, consumer, partitions) -> None:
        from hookstream.delivery.offsets import PartitionOffsets

        for p in partitions:
            self.parts[(p.topic, p.partition)] = PartitionOffsets()
        log.info("assigned %d partition(s)", len(partitions))

    def _on_revoke(self, consumer, partitions) -> None:
        offsets = self._release(partitions)
        if offsets:
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                log.warning("commit on revoke failed: %s", exc.args[0].str())
        log.info("revoked %d partition(s)", len(partitions))

    def _on_lost(self, consumer, partitions) -> None:
        self._release(partitions)
        log.warning("lost %d partition(s)", len(partitions))

    def _release(self, partitions) -> list[TopicPartition]:
        offsets = []
        for p in partitions:
            tp = (p.topic, p.partition)
            part = self.parts.pop(tp, None)
            handle = self.due_paused.pop(tp, None)
            if handle is not None:
                handle.cancel()
            if part is not None and (pos := part.position()) is not None:
                offsets.append(TopicPartition(tp[0], tp[1], pos))
        return offsets

    def _commit(self, *, asynchronous: bool = True) -> None:
        offsets = []
        for (topic, partition), part in self.parts.items():
            pos = part.to_commit()
            if pos is not None:
                offsets.append(TopicPartition(topic, partition, pos))
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=asynchronous)
        except KafkaException as exc:
            log.warning("commit failed (retried with the next one): %s", exc.args[0].str())

    def _on_commit(self, err, partitions) -> None:
        if err is None:
            return
        log.warning("commit failed (offered again): %s", err.str() if hasattr(err, "str") else err)
        for p in partitions:
            part = self.parts.get((p.topic, p.partition))
            if part is not None:
                part.commit_failed()

    # ------------------------------------------------------------------ handling decisions
    async def _process(self, part, offset: int, record: DeliveryRecord, tp: tuple[str, int]) -> None:
        try:
            decision = await self.deliverer.deliver(record)
            self._handle(decision, record, part, offset, tp)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug this record triggers: set it aside, never stop for it
            self._internal_error(exc, record, part, offset, tp)

    def _handle(self, decision: Decision, record: DeliveryRecord, part, offset: int, tp: tuple[str, int]) -> None:
        if isinstance(decision, Dropped):
            m.DROPPED.labels(decision.reason).inc()
            log.info("dropped delivery %s: %s", record.delivery_id, decision.reason)
            self._finish(part, offset)
            return
        report = decision.report
        # what the record's content can make fail (serialising it, its attempt row) comes before
        # the first side effect, so an exception leaves nothing half done for _internal_error
        row = value = None
        if isinstance(decision, Delivered):
            row = row_values(record, report, "succeeded")
        elif isinstance(decision, Retry):
            row = row_values(record, report, "failed") if report is not None else None
            # orjson serialises the dataclass itself: the same bytes as DeliveryRecord.to_bytes, 5x faster
            value = orjson.dumps(decision.record)
        else:
            row = row_values(record, report, "dead") if report is not None else None
            value = dead_letter_value(decision.record, decision.reason, time.time())
        series = self._series.get((record.event_type, record.tenant_id))
        if series is None:
            series = self._new_series(record.event_type, record.tenant_id)
        if report is not None:
            series.duration.observe(report.duration)
            if report.status is not None:
                self._status_series(record.event_type, report.status).inc()
        if isinstance(decision, Delivered):
            series.succeeded.inc()
            self.writer.submit(row, _Completion(self, part, offset, 1).ack)
        elif isinstance(decision, Retry):
            done = _Completion(self, part, offset, 2 if row is not None else 1)
            if row is not None:
                series.failed.inc()
                series.retries[str(report.outcome.reason)].inc()
                self.writer.submit(row, done.ack)
            else:
                self._skipped(decision.skipped).inc()
            topic = self.settings.topic(retry_topic(decision.tier))
            self._send(_Out(self, topic, decision.record.subscription_id.encode(), value, done.ack, (*tp, offset), decision.record))
        else:
            done = _Completion(self, part, offset, 2 if row is not None else 1)
            if row is not None:
                series.dead.inc()
                self.writer.submit(row, done.ack)
            m.DEAD_LETTERS.labels(record.event_type, record.tenant_id, decision.code).inc()
            if decision.disable_endpoint:
                m.GONE.labels(record.tenant_id, record.subscription_id).inc()
                self._gone_tenant[record.subscription_id] = record.tenant_id
                log.warning("subscription %s answered 410 Gone: the receiver asks to be disabled", record.subscription_id)
            if decision.code == "tenant_mismatch":
                log.warning("refused delivery %s: %s", record.delivery_id, decision.reason)
            else:
                log.info("dead-lettered delivery %s: %s", record.delivery_id, decision.reason)
            self._send(_Out(self, self.dead_topic, decision.record.subscription_id.encode(), value, done.ack,
                            (*tp, offset), decision.record, decision.reason))
        self._show_breaker(record.subscription_id)

    def _internal_error(self, exc: Exception, record: DeliveryRecord, part, offset: int, tp: tuple[str, int]) -> None:
        """Dead-letter ONE record whose handling raised, as ``internal_error``. The traceback is
        logged the first time an exception comes from a given place (a bug every record hits
        would otherwise flood the log); the reason names only the exception's type (its message
        may quote a header value)."""
        m.INTERNAL_ERRORS.inc()
        m.DEAD_LETTERS.labels(record.event_type, record.tenant_id, "internal_error").inc()
        where = _origin(exc)
        if where not in self._bugs_logged and len(self._bugs_logged) < 100:
            self._bugs_logged.add(where)
            log.error("delivery %s (%s[%d]@%d) hit a bug in the worker, not the endpoint's fault; dead-lettered as internal_error",
                      record.delivery_id, tp[0], tp[1], offset, exc_info=exc)
        else:
            log.error("delivery %s (%s[%d]@%d) dead-lettered as internal_error: %s (traceback logged before)",
                      record.delivery_id, tp[0], tp[1], offset, type(exc).__name__)
        reason = f"internal_error: {type(exc).__name__} in the delivery worker (see its log)"
        done = _Completion(self, part, offset, 1).ack
        try:
            value = dead_letter_value(record, reason, time.time())
        except Exception:  # the record itself cannot be written: keep a reference to it
            self._set_aside_ref(_Out(self, self.dead_topic, None, b"", done, (*tp, offset), record, reason, level=1), "it cannot be serialised")
            return
        self._send(_Out(self, self.dead_topic, record.subscription_id.encode(), value, done, (*tp, offset), record, reason))

    def _skipped(self, reason: str):
        child = self._skip_series.get(reason)
        if child is None:
            child = self._skip_series[reason] = m.SKIPPED.labels(reason)
        return child

    def _status_series(self, event: str, status: int):
        child = self._statuses.get((event, status))
        if child is None:
            child = self._statuses[(event, status)] = m.HTTP_STATUS.labels(event, str(status))
        return child

    def _show_breaker(self, endpoint: str) -> None:
        breaker = self.deliverer.breakers.get(endpoint)  # none: no attempt was ever asked for
        if breaker is None:
            return
        state = int(breaker.state)
        if self._breaker_shown.get(endpoint) != state:
            self._breaker_shown[endpoint] = state
            m.BREAKER_STATE.labels(endpoint).set(state)

    # ------------------------------------------------------------------ bounded memory
    def _forget_series(self, endpoint: str) -> None:
        """The deliverer forgot the endpoint (idle, deleted or disabled): drop its series too, so
        the registry holds the recent endpoints' series, not every one ever seen. The gauge's
        series goes with its breaker (an open one is kept as long as the breaker is)."""
        if self._breaker_shown.pop(endpoint, None) is not None:
            m.BREAKER_STATE.remove(endpoint)
        tenant = self._gone_tenant.pop(endpoint, None)
        if tenant is not None:
            m.GONE.remove(tenant, endpoint)

    def _new_series(self, event: str, tenant: str) -> _Series:
        key = (event, tenant)
        series = self._series_old.pop(key, None) or _Series(event, tenant)
        self._series[key] = series
        return series

    def _age_series(self, now: float) -> None:
        """Drop the (event, tenant) series lookups unused for a whole SERIES_TTL. Only the cache:
        the registry keeps per-tenant counters, so they never restart from zero for a tenant whose
        traffic is sparse (their number is tenants x event types, not endpoints)."""
        if now - self._series_aged_at >= SERIES_TTL:
            self._series_old, self._series = self._series, {}
            self._series_aged_at = now

    def _set_aside(self, msg, reason: str, part, offset: int) -> None:
        m.MALFORMED.inc()
        m.DEAD_LETTERS.labels("unknown", "unknown", "malformed").inc()
        log.warning("set aside an unreadable record at %s[%d]@%d: %s", msg.topic(), msg.partition(), offset, reason)
        key, value = msg.key(), msg.value()
        doc = {
            "reason": f"malformed: {reason}",
            "topic": msg.topic(),
            "partition": msg.partition(),
            "offset": offset,
            "key_b64": base64.b64encode(key[:MAX_KEY_BYTES]).decode() if key is not None else None,
            "value_b64": None,
            "dead_lettered_at": round(time.time(), 3),
        }
        if value is not None:
            if len(value) * 4 // 3 + 4096 <= self.max_value_bytes:
                doc["value_b64"] = base64.b64encode(value).decode()
            else:  # base64 would not fit the dead-letter topic: an excerpt, and the source's address
                doc["value_bytes"] = len(value)
                doc["value_excerpt_b64"] = base64.b64encode(value[:EXCERPT_BYTES]).decode()
        src = (msg.topic(), msg.partition(), offset)
        self._send(_Out(self, self.dead_topic, _bounded_key(key), orjson.dumps(doc), _Completion(self, part, offset, 1).ack, src, None))

    # ------------------------------------------------------------------ producing
    def _send(self, out: "_Out") -> None:
        """Produce ``out``; never blocks. Behind a backlog (the producer's queue was full) it
        waits its turn; the loop drains the backlog as the queue empties."""
        size = len(out.value) + (len(out.key) if out.key is not None else 0)
        if size > self.max_value_bytes:
            self._set_aside_ref(out, f"{size} bytes of key and value, more than this producer's message.max.bytes")
            return
        if self._backlog or not self._try_send(out):
            self._backlog.append(out)

    def _try_send(self, out: "_Out") -> bool:
        """False when the producer's queue is full (``out`` was not taken)."""
        try:
            self.producer.produce(out.topic, value=out.value, key=out.key, on_delivery=out.delivered)
        except BufferError:
            return False
        except KafkaException as exc:  # refused by the client itself, e.g. _MSG_SIZE_TOO_LARGE
            self._refused(out, exc.args[0])
        return True

    def _drain_backlog(self) -> None:
        backlog = self._backlog
        while backlog and self._try_send(backlog[0]):
            backlog.popleft()

    def _refused(self, out: "_Out", err: KafkaError) -> None:
        """A record the client or the broker did not take. One it will never take (too large,
        invalid) is replaced by a reference; anything else means Kafka is failing: stop."""
        if err.fatal() or err.code() not in _RECORD_ERRORS:
            self._fail(KafkaException(err), "kafka", f"the broker did not take a record for {out.topic}: {err.str()}")
            return
        self._set_aside_ref(out, err.str())

    def _set_aside_ref(self, out: "_Out", why: str) -> None:
        """Put a reference to ``out``'s record on the dead-letter topic instead of the record:
        where it came from, its ids, its size and (first try) an excerpt. Its acknowledgement
        finishes what ``out``'s would have."""
        level = out.level + 1
        if level > 2:
            # a bare reference is a few hundred bytes whatever the record held (every string in it
            # and its key are cut): only a misconfigured dead-letter topic refuses it. That is
            # infrastructure: stop as a Kafka error (one line, exit 1), committing nothing past it.
            err = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, f"{out.topic} refused a {len(out.value)}-byte reference ({why})")
            self._fail(KafkaException(err), "kafka", f"could not set a record aside on {out.topic}: {why}")
            return
        rec = out.record
        doc: dict[str, Any] = {
            "reason": f"too_large: the record for {out.topic} was refused ({_cut(why)})"
                      + (f"; it was being dead-lettered: {_cut(out.reason)}" if out.reason else ""),
            "ref": {
                "topic": out.src[0][:REF_CHARS], "partition": out.src[1], "offset": out.src[2],
                "event_id": _cut(rec.event_id) if rec else None, "delivery_id": _cut(rec.delivery_id) if rec else None,
                "subscription_id": _cut(rec.subscription_id) if rec else None,
                "tenant_id": _cut(rec.tenant_id) if rec else None, "event_type": _cut(rec.event_type) if rec else None,
            },
            "value_bytes": len(out.value),
            "dead_lettered_at": round(time.time(), 3),
        }
        if level == 1 and out.value:
            doc["excerpt"] = out.value[:EXCERPT_BYTES].decode("utf-8", "replace")
        m.DEAD_LETTERS.labels(rec.event_type if rec else "unknown", rec.tenant_id if rec else "unknown", "too_large").inc()
        log.warning("set aside a reference to %s[%d]@%d (delivery %.64s) instead of a record for %s: %s",
                    *out.src, rec.delivery_id if rec else "unknown", out.topic, _cut(why))
        key = out.key[:REF_KEY_BYTES] if out.key is not None else None
        self._send(_Out(self, self.dead_topic, key, orjson.dumps(doc), out.on_ack, out.src, rec, level=level))

    def _fail(self, exc: BaseException, kind: str, what: str) -> None:
        """An infrastructure error: stop (exit 1) without finishing what it touched."""
        if self.fatal is None:
            self.fatal = exc
            m.WORKER_FAILURES.labels(kind).inc()
            log.error("%s; stopping", what)

    def _finish(self, part, offset: int) -> None:
        part.finish(offset)
        self.in_flight -= 1


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
