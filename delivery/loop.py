"""The delivery worker's Kafka loop: consume, pause and resume tier partitions, rebalance, commit.

It takes an already-built confluent-kafka ``Consumer`` and ``Producer`` (the shell builds them
with ``hookstream.core.kafka``'s factories and ``consumer_overrides`` / ``producer_overrides``;
unit tests hand it fakes). One consumer (manual commits, round-robin assignment) reads
``deliveries`` and every retry tier topic; it is polled without blocking (``consume(timeout=0)``)
and the loop yields to the event loop in between: a few milliseconds when nothing came, at once
otherwise. One pass of the loop is ``_step``, so a test drives it pass by pass, with no clock.

Retries without blocking: a tier partition whose head record is not due yet is *paused* and the
consumer seeks back to that head; a timer on the event loop resumes it at the due time. The poll
loop never sleeps until a due time, and other partitions and topics keep flowing.

At-least-once: ``delivery.offsets.PartitionOffsets`` per assigned partition; an offset is
finished (by ``delivery.handler``) only once its outcome is durable, and commits never pass the
lowest unfinished offset. On revoke, the positions of what is finished are committed and the
rest is handed back (records in flight are delivered again by the next owner, with the same
``webhook-id``); on a lost assignment nothing is committed. An infrastructure error (``_fail``)
ends the loop; the shutdown then commits only what is durable.

Flow control: at most ``concurrency`` records in flight; at the bound the loop stops taking
records (they wait in the client's fetch queue; no pause, so no re-fetch), polling only once a
second so rebalances are still served.

A part of ``delivery.worker.Worker`` (a mixin sharing the worker's attributes, so the per-record
path costs no extra hop). State it owns: ``consumer``, ``parts``, ``due_paused``, ``in_flight``
(incremented here, decremented by the handler's ``_finish``), ``_tasks``, ``loop``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from hookstream.core.errors import BrokerError
from hookstream.core.wire import MalformedRecord, decode_record
from hookstream.delivery.attempt_log import AttemptLogUnavailable, AttemptLogWriter
from hookstream.delivery.offsets import PartitionOffsets

log = logging.getLogger("hookstream.delivery")

CONSUME_BATCH = 500
IDLE_WAIT = 0.005  # seconds the loop yields when the consumer had nothing
COMMIT_INTERVAL = 0.2
LIVENESS_POLL = 1.0  # at the in-flight bound, still poll this often (rebalances, liveness)
HEALTH_INTERVAL = 1.0
CLIENT_ID = "hookstream-delivery"


class CommitRelay:
    """The consumer's ``on_commit`` callback, made before the worker whose ``_on_commit`` it calls
    (the consumer is built first, by the shell, and handed to the worker, which connects it)."""

    __slots__ = ("target",)

    def __init__(self) -> None:
        self.target: Callable[[Any, Any], None] | None = None

    def __call__(self, err, partitions) -> None:
        if self.target is not None:
            self.target(err, partitions)


def consumer_overrides(on_commit: Callable[[Any, Any], None]) -> dict[str, Any]:
    """What the delivery worker's consumer changes in ``hookstream.core.kafka.consumer_config``:
    ``make_consumer(settings, group, **consumer_overrides(commits))``."""
    return {
        "client.id": CLIENT_ID, "on_commit": on_commit,
        # round-robin, not cooperative-sticky: sticky balances the *count* of partitions
        # over all the topics, and with a second worker it moved only retry-tier
        # partitions, leaving every `deliveries` partition (all the live traffic) on the
        # first one (measured: 0.003 vs 0.19 CPU-s per 1,000 deliveries). Round-robin
        # deals each topic's partitions out in turn. The price is an eager rebalance:
        # records in flight when one starts may be delivered again (same webhook-id).
        "partition.assignment.strategy": "roundrobin",
        # a worker that dies without leaving (SIGKILL, a lost host) holds its partitions until
        # the group gives up on it: 10 s, as the stream worker's group (librdkafka's default 45 s
        # stalled a share of every tenant's deliveries that long in the fault suite). Heartbeats
        # come from librdkafka's own thread, so a busy event loop does not miss them.
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 3_000,
    }


def producer_overrides(**options: Any) -> dict[str, Any]:
    """What the delivery worker's producer changes in ``hookstream.core.kafka.producer_config``
    (its ``client.id``, then ``options``): ``make_producer(settings, **producer_overrides())``."""
    return {"client.id": CLIENT_ID, **options}


class ConsumeLoop:
    """consume -> accept (decode, pause if not due, start the task) -> commit; rebalances; shutdown."""

    # ------------------------------------------------------------------ lifecycle
    async def run(self, stop: asyncio.Event, *, ready: Callable[[], None] | None = None) -> None:
        if self.consumer is None or self.producer is None:
            raise TypeError("the delivery worker runs on a consumer and a producer it is given (see hookstream.shell.cli.delivery)")
        self.loop = asyncio.get_running_loop()
        if self.writer is None:
            self.writer = AttemptLogWriter(self.engine, self.loop, max_outage=self.settings.attempt_log_max_outage_seconds).start()
        self._subscribe()
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

    def _subscribe(self) -> None:
        self.consumer.subscribe(
            [self.main_topic, *self.tier_topics],
            on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost,
        )
        log.info("delivery worker consuming %s and %d retry tier(s) in group %s", self.main_topic, len(self.tier_topics), self.group)

    def _start_clock(self, now: float) -> None:
        self._next_commit = now + COMMIT_INTERVAL
        self._next_check = now + HEALTH_INTERVAL
        self._last_consume = now

    async def _loop(self, stop: asyncio.Event) -> None:
        self._start_clock(time.monotonic())
        step = self._step
        while not stop.is_set() and self.fatal is None:
            await asyncio.sleep(0 if step(time.monotonic()) else IDLE_WAIT)

    def _step(self, now: float) -> bool:
        """One pass: serve the producer's reports, drain the backlog, take what room allows,
        commit and check health when due. True when records came (the loop goes on at once)."""
        self.producer.poll(0)
        if self._backlog:
            self._drain_backlog()
        room = self.concurrency - self.in_flight
        msgs = ()
        if room > 0 or now - self._last_consume > LIVENESS_POLL:
            # at the bound, records wait in the client's fetch queue; one poll a second still
            # serves rebalances and keeps the member alive (it may admit a record or so more)
            msgs = self.consumer.consume(min(max(room, 1), CONSUME_BATCH), 0)
            self._last_consume = now
        accept = self._accept
        for msg in msgs:
            accept(msg)
        if now >= self._next_commit:
            self._commit()
            self._next_commit = now + COMMIT_INTERVAL
        if now >= self._next_check:
            self._check_health()
            self._next_check = now + HEALTH_INTERVAL
        return bool(msgs)

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
        for p in partitions:
            self.parts[(p.topic, p.partition)] = PartitionOffsets()
        # librdkafka keeps a partition's pause across a rebalance that hands it back to this
        # consumer, while the resume timer went with the revoke: start every assigned partition
        # unpaused (a head not due yet pauses it again, with a new timer)
        try:
            consumer.resume(partitions)
        except KafkaException as exc:
            self._fail(exc, "kafka", f"resuming assigned partitions failed: {exc.args[0].str()}")
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

    # ------------------------------------------------------------------ committing
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
