"""Messages: one event to one endpoint (the ``webhook-id``), read from the attempt log.

A message is every ``delivery_attempts`` row of one ``delivery_id``; its status is its latest
attempt's (``succeeded``, ``failed``: a retry is due, ``dead``: dead-lettered). The filters
(``STATUS_FILTERS``) add two words users of other senders expect: ``pending`` (not final yet:
the latest attempt failed and a retry is due, the same set as the attempt log's ``failed``) and
``failed`` (the latest attempt did not succeed: ``failed`` or ``dead``). A message becomes
visible with its first recorded attempt.

Everything here is tenant-scoped (``tenant_id``, keyword, required): another tenant's message
is "not found", never listed. On PostgreSQL each query runs bound to its tenant, so row-level
security backs up the filter (``hookstream.core.db``).

``find_event`` reads a message's event back from its event topic (for a resend): the attempt
log keeps no payload, and the event topic keeps every event for 7 days.
"""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from sqlalchemy import Engine, func, select

from hookstream.core.errors import BrokerError, NotFoundError, ValidationError
from hookstream.core.kafka import make_consumer, make_producer, produce_one
from hookstream.core.settings import Settings
from hookstream.core.topics import DELIVERIES, EVENT_TOPICS
from hookstream.core.wire import DeliveryRecord
from hookstream.delivery.attempt_log import AttemptRow, attempts_of
from hookstream.core.db import bind_tenant
from hookstream.schemas import Event, InvalidEventError, parse_event
from hookstream.subscriptions.store import validate_tenant

__all__ = [
    "STATUS_FILTERS", "Message", "endpoint_stats", "find_event", "get_message", "list_attempts", "list_messages",
    "requeue",
]

# filter word -> the latest attempt's statuses it selects
STATUS_FILTERS: dict[str, tuple[str, ...]] = {
    "succeeded": ("succeeded",),
    "failed": ("failed", "dead"),
    "dead": ("dead",),
    "pending": ("failed",),
}
STATS_WINDOWS = {"hour": 3600.0, "day": 86400.0}
# resend: how far before a message's first attempt its event may have been published
RESEND_LOOKBACK = 3600.0
_ID = re.compile(r"[\x21-\x7e]{1,128}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Message:
    id: str  # the delivery id: the webhook-id
    tenant_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: str  # the latest attempt's
    attempts: int
    first_attempt_at: str
    last_attempt_at: str
    last_status_code: int | None
    cursor: int  # the latest attempt's row id: the list's order

    def as_dict(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        del doc["cursor"]
        return doc


def _iso(at: datetime | str) -> str:
    if isinstance(at, str):
        return at
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.isoformat().replace("+00:00", "Z")


def _message(row) -> Message:
    return Message(
        id=row["delivery_id"], tenant_id=row["tenant_id"], endpoint_id=row["subscription_id"], event_id=row["event_id"],
        event_type=row["event_type"], status=row["status"], attempts=row["attempts"],
        first_attempt_at=_iso(row["first_attempt_at"]), last_attempt_at=_iso(row["attempted_at"]),
        last_status_code=row["http_status"], cursor=row["id"],
    )


def _select_messages(tenant_id: str, *, delivery_id: str | None = None, endpoint_id: str | None = None,
                     event_type: str | None = None):
    latest = select(
        AttemptRow.delivery_id,
        func.max(AttemptRow.id).label("last_id"),
        func.count().label("attempts"),
        func.min(AttemptRow.attempted_at).label("first_attempt_at"),
    ).where(AttemptRow.tenant_id == tenant_id).group_by(AttemptRow.delivery_id)
    if delivery_id is not None:
        latest = latest.where(AttemptRow.delivery_id == delivery_id)
    if endpoint_id is not None:
        latest = latest.where(AttemptRow.subscription_id == endpoint_id)
    if event_type is not None:
        if event_type.endswith(".*"):
            latest = latest.where(AttemptRow.event_type.startswith(event_type[:-1], autoescape=True))
        else:
            latest = latest.where(AttemptRow.event_type == event_type)
    latest = latest.subquery()
    table = AttemptRow.__table__
    return table, select(table, latest.c.attempts, latest.c.first_attempt_at).join(latest, table.c.id == latest.c.last_id)


def _rows(engine: Engine, tenant_id: str, query) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        bind_tenant(conn, tenant_id)
        return [dict(r._mapping) for r in conn.execute(query)]


def list_messages(
    engine: Engine,
    *,
    tenant_id: str,
    endpoint_id: str | None = None,
    event_type: str | None = None,
    status: str | None = None,
    since: float | None = None,
    until: float | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[Message]:
    """``tenant_id``'s messages, newest latest attempt first; ``before`` continues a listing
    after the message whose ``cursor`` it is. ``since``/``until`` (unix seconds) bound the
    latest attempt's time (``until`` excluded)."""
    validate_tenant(tenant_id)
    if status is not None and status not in STATUS_FILTERS:
        raise ValidationError(f"status: {status!r} is not one of {', '.join(STATUS_FILTERS)}")
    table, query = _select_messages(tenant_id, endpoint_id=endpoint_id, event_type=event_type)
    if status is not None:
        query = query.where(table.c.status.in_(STATUS_FILTERS[status]))
    if since is not None:
        query = query.where(table.c.attempted_at >= datetime.fromtimestamp(since, UTC))
    if until is not None:
        query = query.where(table.c.attempted_at < datetime.fromtimestamp(until, UTC))
    if before is not None:
        query = query.where(table.c.id < before)
    query = query.order_by(table.c.id.desc()).limit(limit)
    return [_message(r) for r in _rows(engine, tenant_id, query)]


def get_message(engine: Engine, message_id: str, *, tenant_id: str) -> Message:
    """One of ``tenant_id``'s messages; ``NotFoundError`` for another tenant's or an unknown id."""
    validate_tenant(tenant_id)
    _table, query = _select_messages(tenant_id, delivery_id=message_id)
    rows = _rows(engine, tenant_id, query)
    if not rows:
        raise NotFoundError(f"no message {message_id!r}")
    return _message(rows[0])


def list_attempts(engine: Engine, message_id: str, *, tenant_id: str) -> list[dict[str, Any]]:
    """Every attempt of one of ``tenant_id``'s messages, oldest first: time, status, status code,
    duration, reason (the delivery error, masked when written) and the response excerpt."""
    rows = attempts_of(engine, message_id, tenant_id=tenant_id)
    if not rows:
        raise NotFoundError(f"no message {message_id!r}")
    return [
        {
            "attempt": r["attempt"], "attempted_at": r["attempted_at"], "status": r["status"], "status_code": r["http_status"],
            "duration_ms": r["duration_ms"], "reason": r["error"], "response_excerpt": r["response_excerpt"],
        }
        for r in rows
    ]


def endpoint_stats(engine: Engine, endpoint_id: str, *, tenant_id: str, now: float | None = None) -> dict[str, Any]:
    """Attempts of one endpoint over the last hour and day: counts by status and latency (ms)."""
    validate_tenant(tenant_id)
    now = time.time() if now is None else now
    out: dict[str, Any] = {}
    for name, span in STATS_WINDOWS.items():
        start = datetime.fromtimestamp(now - span, UTC)
        where = (AttemptRow.tenant_id == tenant_id, AttemptRow.subscription_id == endpoint_id, AttemptRow.attempted_at >= start)
        counts = select(AttemptRow.status, func.count(), func.avg(AttemptRow.duration_ms), func.max(AttemptRow.duration_ms)).where(*where).group_by(AttemptRow.status)
        by_status = {s: 0 for s in ("succeeded", "failed", "dead")}
        total, weighted, longest = 0, 0.0, None
        for row in _rows(engine, tenant_id, counts):
            status, n, avg, high = row.values()
            by_status[status] = n
            total += n
            weighted += (avg or 0.0) * n
            longest = high if longest is None else max(longest, high)
        latency = {"avg": round(weighted / total, 3) if total else None, "max": longest}
        for q in (50, 95, 99):
            latency[f"p{q}"] = _percentile(engine, tenant_id, where, total, q)
        out[name] = {"attempts": total, **by_status, "latency_ms": latency}
    return out


def _percentile(engine: Engine, tenant_id: str, where, total: int, q: int) -> float | None:
    """Nearest-rank percentile of the attempts' durations, one indexed row read (no SQL percentile
    function is portable between SQLite and PostgreSQL)."""
    if not total:
        return None
    rank = max(1, -(-total * q // 100))  # ceil
    query = select(AttemptRow.duration_ms).where(*where).order_by(AttemptRow.duration_ms).offset(rank - 1).limit(1)
    rows = _rows(engine, tenant_id, query)
    return rows[0]["duration_ms"] if rows else None


# ---------------------------------------------------------------------------- resend
def _uuid7_time(event_id: str) -> float | None:
    try:
        u = uuid.UUID(event_id)
    except ValueError:
        return None
    return (u.int >> 80) / 1000.0 if u.version == 7 else None


def find_event(settings: Settings, message: Message, *, timeout: float = 10.0, lookback: float = RESEND_LOOKBACK) -> Event:
    """The event of ``message``, read back from its event topic: the records published from
    ``lookback`` seconds before its first attempt (or just before a UUIDv7 id's own time) up to
    that attempt. ``NotFoundError`` when the topic no longer holds it."""
    aggregate = message.event_type.rsplit(".", 1)[0]
    if aggregate not in EVENT_TOPICS or not _ID.fullmatch(message.event_id):
        raise NotFoundError(f"the event of message {message.id} cannot be read back (type {message.event_type!r})")
    first = datetime.fromisoformat(message.first_attempt_at.replace("Z", "+00:00")).timestamp()
    made = _uuid7_time(message.event_id)
    since = (min(made, first) - 60.0) if made is not None and made <= first + 60.0 else first - lookback
    until = first + 5.0
    topic = settings.topic(EVENT_TOPICS[aggregate])
    needle = message.event_id.encode()
    consumer = make_consumer(settings, "hookstream-resend", **{"enable.partition.eof": True, "log_level": 3})
    try:
        md = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if md is None or md.error is not None:
            raise BrokerError(f"topic {topic} does not exist; run `hookstream topics ensure`")
        starts = consumer.offsets_for_times([TopicPartition(topic, p, int(max(since, 0.0) * 1000)) for p in md.partitions], timeout=timeout)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1] for p in md.partitions}
        live = [tp for tp in starts if 0 <= tp.offset < ends[tp.partition]]
        if live:
            consumer.assign(live)
        remaining = {tp.partition for tp in live}
        while remaining:
            msg = consumer.poll(timeout)
            if msg is None:
                raise BrokerError(f"reading {topic} stalled (no answer within {timeout:g}s)")
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    remaining.discard(msg.partition())
                    continue
                raise BrokerError(f"reading {topic} failed: {msg.error().str()}")
            p = msg.partition()
            if msg.offset() >= ends[p] or msg.timestamp()[1] >= until * 1000:
                remaining.discard(p)
                consumer.pause([TopicPartition(topic, p)])
                continue
            value = msg.value()
            if value is None or needle not in value:  # cheap test first: most records are other events
                continue
            try:
                event = parse_event(value)
            except InvalidEventError:
                continue
            if event.id == message.event_id and event.tenant_id == message.tenant_id and event.type == message.event_type:
                return event
    except KafkaException as exc:
        raise BrokerError(f"reading {topic} failed: {exc.args[0].str()}") from None
    finally:
        consumer.close()
    raise NotFoundError(f"the event of message {message.id} is no longer on {topic} (kept 7 days)")


def requeue(settings: Settings, record: DeliveryRecord, *, timeout: float = 30.0,
            producer_factory: Callable[..., Producer] = make_producer) -> None:
    """Put one delivery record on the ``deliveries`` topic and wait for the broker's ack
    (``BrokerError`` otherwise): test messages, resends."""
    producer = producer_factory(settings, **{"client.id": "hookstream-api"})
    failures: list[str] = []

    def on_delivery(err, _msg) -> None:
        if err is not None:
            failures.append(err.str())

    error = produce_one(producer, settings.topic(DELIVERIES), record.subscription_id.encode(), record.to_bytes(),
                        on_delivery, wait=timeout)
    if error is not None:
        raise BrokerError(f"the broker refused message {record.delivery_id}: {error}")
    if producer.flush(timeout) or failures:
        raise BrokerError(f"the broker did not acknowledge message {record.delivery_id}: "
                          f"{failures[0] if failures else f'no answer within {timeout:g}s'}")
