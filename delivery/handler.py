"""The delivery worker's outcome handling: a ``Decision`` in, its durable effects out.

``Deliverer.deliver`` (``delivery.attempt``) decides what became of one record; this part of the
worker *handles* the decision: it writes the attempt row (``delivery.attempt_log``), forwards the
record to a retry tier or the dead-letter topic, counts the metrics, and finishes the record's
offset only once every one of those effects is durable (``_Completion``: the attempt row
committed, the forward acknowledged by the broker). It also sets aside what cannot be read or
produced: an unreadable input record (the pipeline's one set-aside format,
``hookstream.core.wire.set_aside_record``), a record the broker will never take (a reference and
an excerpt), a record whose handling raised (``internal_error``).

Producing never blocks the loop and never loses a record: a full producer queue (``BufferError``)
parks the forward in a backlog the loop drains; a record the broker or the client refuses on its
own (key and value too large for ``message.max.bytes``, which librdkafka checks in produce(), or
for the topic's ``max.message.bytes``) is replaced on the dead-letter topic by a reference
(source topic/partition/offset, event id, delivery id) and a bounded excerpt (reason
``too_large``). A reference is small whatever the record held (its strings and key are cut), so
only a dead-letter topic that refuses even that stops the worker, as a Kafka error. Any other
produce error means Kafka is failing: ``_fail`` stops the worker without finishing the record.

A part of ``delivery.worker.Worker`` (a mixin: every method runs on the worker's one event loop
and is called per record, so it shares the worker's attributes instead of adding a hop). State it
reads: ``settings``, ``deliverer``, ``writer``, ``producer``, ``dead_topic``, ``max_value_bytes``;
state it owns: ``_backlog``, ``_bugs_logged``, ``fatal``; ``in_flight`` it decrements in
``_finish`` (the loop increments it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import KafkaError, KafkaException

from hookstream.core.topics import retry_topic
from hookstream.core.wire import DeliveryRecord, dead_letter_value, set_aside_key, set_aside_record
from hookstream.delivery import metrics as m
from hookstream.delivery.attempt import Decision, Delivered, Dropped, Retry
from hookstream.delivery.attempt_log import row_values

log = logging.getLogger("hookstream.delivery")

EXCERPT_BYTES = 1024  # of a record set aside by reference
MAX_KEY_BYTES = 1024  # a set-aside record keeps its key up to this size (a larger one: excerpt; its Kafka key: SHA-256)
REF_KEY_BYTES = 256  # the key of a reference set aside instead of a record
PRODUCE_OVERHEAD = 1024  # room for headers and framing under message.max.bytes (the key is counted)
SET_ASIDE_OVERHEAD = 4096  # room for the rest of a set-aside record beside its base64 value
REF_CHARS = 256  # each string a set-aside reference copies from a record, at most
# errors of ONE record the broker or the client will never take; any other produce error that
# reaches the callback (librdkafka retried the retriable ones itself) means the broker is gone
_RECORD_ERRORS = frozenset({
    KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE,
    KafkaError.INVALID_RECORD,
})


class _Completion:
    """Counts the acknowledgements one record's outcome needs before its offset may be committed."""

    __slots__ = ("worker", "part", "offset", "remaining")

    def __init__(self, worker: "OutcomeHandler", part, offset: int, remaining: int) -> None:
        self.worker, self.part, self.offset, self.remaining = worker, part, offset, remaining

    def ack(self) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self.worker._finish(self.part, self.offset)


class _Out:
    """One record to produce: where, what its acknowledgement finishes, and where it came from
    (``src``: topic, partition, offset) should it have to be set aside by reference."""

    __slots__ = ("worker", "topic", "key", "value", "on_ack", "src", "record", "reason", "level")

    def __init__(self, worker: "OutcomeHandler", topic: str, key: bytes | None, value: bytes, on_ack: Callable[[], None],
                 src: tuple[str, int, int], record: DeliveryRecord | None, reason: str | None = None, *, level: int = 0) -> None:
        self.worker, self.topic, self.key, self.value, self.on_ack = worker, topic, key, value, on_ack
        self.src, self.record, self.reason, self.level = src, record, reason, level  # level: 1, 2 = references

    def delivered(self, err, _msg) -> None:
        if err is None:
            self.on_ack()
        else:
            self.worker._refused(self, err)


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


class OutcomeHandler:
    """Decision -> attempt row, retry-tier forward, dead letter, metrics; and the producing side."""

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

    def _set_aside(self, msg, reason: str, part, offset: int) -> None:
        """An input record that cannot be read: on the dead-letter topic in the pipeline's one
        set-aside format (``set_aside_record``, code ``malformed``), its bytes whole when their
        base64 fits the producer's limit, else an excerpt and the source's address."""
        m.MALFORMED.inc()
        m.DEAD_LETTERS.labels("unknown", "unknown", "malformed").inc()
        log.warning("set aside an unreadable record at %s[%d]@%d: %s", msg.topic(), msg.partition(), offset, reason)
        key = msg.key()
        src = (msg.topic(), msg.partition(), offset)
        value = set_aside_record(msg.value(), f"malformed: {reason}", code="malformed", topic=src[0], partition=src[1],
                                 offset=offset, key=key, key_max=MAX_KEY_BYTES,
                                 value_max=(self.max_value_bytes - SET_ASIDE_OVERHEAD) * 3 // 4)
        self._send(_Out(self, self.dead_topic, set_aside_key(key, MAX_KEY_BYTES), value, _Completion(self, part, offset, 1).ack, src, None))

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
