"""The synchronous publisher: validate, route, produce; every delivery report reaches the caller.

``send`` validates the event (``InvalidEventError``: nothing is sent), refuses one whose
serialised envelope is over ``Settings.max_event_bytes`` (``EventTooLargeError``: nothing is
sent; the limit keeps every delivery record under the broker's message size), picks the topic of its
aggregate and keys it by the entity id, and hands it to confluent-kafka's idempotent producer
(``acks=all``). It returns a ``PublishAck`` at once; ``publish`` also waits for the broker's
acknowledgement. A failure is raised by ``PublishAck.result()``, and any failure nobody collected
that way is raised by the next ``flush()`` or ``close()``: no event is dropped silently.

Delivery reports (librdkafka's name for the acknowledgements) are served by ``poll``/``flush`` on the calling thread (``send`` polls now and
then so reports never pile up); ``AsyncPublisher`` polls on a thread of its own instead.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from hookstream.core.kafka import make_producer, producer_config
from hookstream.core.settings import Settings
from hookstream.core.topics import event_topic_for
from hookstream.producers._errors import PublishError, check_size
from hookstream.schemas import ENTITY_FIELDS, Event, encode_event

_POLL_EVERY = 1024  # sends between two poll(0) calls that serve delivery reports


@dataclasses.dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """An event ready for the wire: its full topic name, key (entity id) and value (validated JSON)."""

    event_id: str
    topic: str
    key: bytes
    value: bytes
    event_type: str | None = None  # named in errors


class PublishAck:
    """The broker's acknowledgement of one sent event, pending until it comes: ``partition``/``offset``
    once acknowledged, or ``error`` (a ``PublishError``)."""

    __slots__ = ("event_id", "topic", "key", "partition", "offset", "error", "_done", "_publisher", "_callback")

    def __init__(self, publisher: "Publisher", event_id: str, topic: str, key: bytes, callback: Callable[["PublishAck"], Any] | None) -> None:
        self.event_id = event_id
        self.topic = topic
        self.key = key
        self.partition: int | None = None
        self.offset: int | None = None
        self.error: PublishError | None = None
        self._done = False
        self._publisher = publisher
        self._callback = callback

    @property
    def done(self) -> bool:
        return self._done

    def result(self, timeout: float = 30.0) -> "PublishAck":
        """Wait up to ``timeout`` seconds for the broker; return self, or raise ``PublishError``."""
        if not self._done:
            self._publisher.wait([self], timeout)
        if not self._done:
            raise PublishError(
                f"event {self.event_id} was not acknowledged by the broker at {self._publisher.bootstrap} within "
                f"{timeout:g}s; it is still queued, and flush() reports how it ends",
                event_ids=[self.event_id], code="_TIMED_OUT",
            )
        if self.error is not None:
            with self._publisher._lock:
                self._publisher._unreported.discard(self)  # the caller has it now
            raise self.error
        return self

    def _report(self, err: KafkaError | None, msg: Any) -> None:  # librdkafka's delivery report
        if err is not None:
            self.error = PublishError.from_kafka(self.event_id, self.topic, err, self._publisher.bootstrap)
            with self._publisher._lock:
                self._publisher._unreported.add(self)
        else:
            self.partition, self.offset = msg.partition(), msg.offset()
        self._done = True
        if self._callback is not None:
            self._callback(self)

    def __repr__(self) -> str:
        state = "pending" if not self._done else (f"failed: {self.error}" if self.error else f"{self.partition}@{self.offset}")
        return f"<PublishAck {self.event_id} {self.topic} {state}>"


class Publisher:
    """Publishes events to Kafka. Use as a context manager, or call ``close()``: it flushes.

    ``delivery_timeout`` bounds how long the producer retries one event before reporting it failed.
    ``producer`` replaces the confluent-kafka producer (tests pass a fake); ``config`` overrides
    entries of ``hookstream.kafka.producer_config``.
    """

    def __init__(self, settings: Settings, *, delivery_timeout: float = 120.0, producer: Any = None, **config: Any) -> None:
        self.settings = settings
        self.bootstrap = settings.kafka_bootstrap
        self.max_event_bytes = settings.max_event_bytes
        overrides = {"message.timeout.ms": int(delivery_timeout * 1000), **config}
        self.config = producer_config(settings, **overrides)
        self._producer = producer if producer is not None else make_producer(settings, **overrides)
        self._routes: dict[str, tuple[str, str]] = {}  # event type -> (full topic, entity id field)
        self._unreported: set[PublishAck] = set()  # failed deliveries no caller has seen yet
        self._sends = 0
        self._closed = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ sending
    def _route(self, event_type: str) -> tuple[str, str]:
        route = self._routes.get(event_type)
        if route is None:
            topic = self.settings.topic(event_topic_for(event_type))
            route = self._routes[event_type] = (topic, ENTITY_FIELDS[event_type.split(".", 1)[0]])
        return route

    def topic_for(self, event_type: str) -> str:
        """The full topic name (with prefix) for an event type."""
        return self._route(event_type)[0]

    def prepare(self, event: Event) -> OutgoingRecord:
        """Validate and encode ``event``; raises ``InvalidEventError`` naming the type and field, or
        ``EventTooLargeError`` naming the size and the limit."""
        return self.record_of(event, encode_event(event))

    def record_of(self, event: Event, value: bytes) -> OutgoingRecord:
        """The record of an event its caller already validated and encoded (``value``: ``event.to_bytes()``
        of an event from ``event_from_dict``/``parse_event``), so nothing is validated twice: routed,
        and its size checked (``EventTooLargeError``)."""
        check_size(event.id, event.type, value, self.max_event_bytes)
        topic, field = self._route(event.type)
        return OutgoingRecord(event.id, topic, event.data[field].encode(), value, event.type)

    def send(self, event: Event, *, on_delivery: Callable[[PublishAck], Any] | None = None) -> PublishAck:
        """Validate and enqueue ``event``; returns its ``PublishAck`` without waiting for the broker."""
        value = encode_event(event)  # first: an invalid event raises before anything is sent
        check_size(event.id, event.type, value, self.max_event_bytes)
        topic, field = self._route(event.type)
        return self._produce(event.id, topic, event.data[field].encode(), value, on_delivery, True)

    def publish(self, event: Event, *, timeout: float = 30.0) -> PublishAck:
        """Send ``event`` and wait for the broker's acknowledgement; raises ``PublishError`` if it fails."""
        return self.send(event).result(timeout)

    def send_record(self, record: OutgoingRecord, *, on_delivery: Callable[[PublishAck], Any] | None = None, block: bool = True) -> PublishAck:
        """Enqueue an already encoded record (the outbox relay sends stored events this way).

        When the producer's local queue is full this serves delivery reports until there is room
        (``block=False`` raises ``BufferError`` instead). A record over the size limit raises
        ``EventTooLargeError`` (a stored event may predate a lowered limit).
        """
        check_size(record.event_id, record.event_type, record.value, self.max_event_bytes)
        return self._produce(record.event_id, record.topic, record.key, record.value, on_delivery, block)

    def _produce(self, event_id: str, topic: str, key: bytes, value: bytes,
                 on_delivery: Callable[[PublishAck], Any] | None, block: bool) -> PublishAck:
        if self._closed:
            raise RuntimeError("this Publisher is closed")
        delivery = PublishAck(self, event_id, topic, key, on_delivery)
        while True:
            try:
                self._producer.produce(topic, value, key, on_delivery=delivery._report)
                break
            except BufferError:
                if not block:
                    raise
                self._producer.poll(0.05)
            except KafkaException as exc:
                raise PublishError.from_kafka(event_id, topic, exc.args[0], self.bootstrap) from None
        self._sends += 1
        if self._sends % _POLL_EVERY == 0:
            self._producer.poll(0)
        return delivery

    # ------------------------------------------------------------------ waiting
    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports that have arrived (waiting up to ``timeout`` for one)."""
        self._producer.poll(timeout)

    def wait(self, deliveries: Iterable[PublishAck], timeout: float) -> bool:
        """Serve delivery reports until every one of ``deliveries`` is done or ``timeout`` passes."""
        pending = [d for d in deliveries if not d._done]
        deadline = time.monotonic() + timeout
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._producer.poll(min(remaining, 0.1))
            pending = [d for d in pending if not d._done]
        return True

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for every queued event. Raises ``PublishError`` for any failure not yet raised to a
        caller, or if events are still unacknowledged after ``timeout`` seconds."""
        remaining = self._producer.flush(timeout)
        self.raise_unreported()
        if remaining:
            raise PublishError(
                f"{remaining} event(s) not acknowledged by the broker at {self.bootstrap} within {timeout:g}s",
                code="_TIMED_OUT",
            )

    def raise_unreported(self) -> None:
        """Raise ``PublishError`` for failed deliveries that no caller has seen yet (once)."""
        with self._lock:
            failed, self._unreported = self._unreported, set()
        if failed:
            raise PublishError.combine(d.error for d in sorted(failed, key=lambda d: d.event_id))

    def close(self, timeout: float = 30.0) -> None:
        """Flush, then refuse further sends. Raises like ``flush``."""
        if self._closed:
            return
        try:
            self.flush(timeout)
        finally:
            self._closed = True

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.close()
            return
        try:
            self.close()
        except PublishError as failure:  # keep the original error, and say what else went wrong
            exc.add_note(f"also: {failure}")
