"""Dead letters: read, filter, show and replay what the delivery workers gave up on.

A dead letter is a record on ``deliveries.dlq``: either a ``DeliveryRecord`` with its attempt
history plus ``reason`` and ``dead_lettered_at``, an unreadable record set aside with ``reason``
("malformed: ...") and its original bytes, or a reference (``ref``: source topic, partition,
offset and the delivery's ids) with an excerpt, for a record too large to write whole
("too_large: ..."). Only the first kind is replayable; every entry is read through the delivery
worker's own ``decode_record``, so nothing on this topic that the worker would refuse is ever
put back on ``deliveries``. Each is named by where it sits:
``<partition>-<offset>``, stable for as long as the topic keeps it.

A replay puts the delivery back on the ``deliveries`` topic (keyed by subscription id) with the
same delivery id (so the same ``webhook-id``), a fresh attempt count and ``replay_of`` set. Every
replayed entry is written to the ``dlq_replays`` table, so replaying the same range twice reports
the entries already replayed instead of sending them again (``force`` overrides).

Tenancy: a ``Filter`` names its tenant, or says ``all_tenants=True`` (operators); ``find`` takes
a tenant and ``find_any_tenant`` is the operators' lookup. Another tenant's dead letter, and an
unreadable record (it has no tenant to match), are "not found" for a tenant.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from sqlalchemy import DateTime, String, select
from sqlalchemy.orm import Mapped, mapped_column

from hookstream.core.db import Base, open_database, session_factory
from hookstream.core.errors import BrokerError, NotFoundError, ValidationError
from hookstream.core.kafka import make_producer, produce_one
from hookstream.core.wire import DeliveryRecord
from hookstream.core.redact import redact_urls
from hookstream.core.settings import Settings
from hookstream.core.time import format_unix
from hookstream.core.topics import DEAD_LETTERS, DELIVERIES
from hookstream.subscriptions.filters import matches
from hookstream.subscriptions.store import validate_tenant


class ReplayRow(Base):
    __tablename__ = "dlq_replays"

    entry_id: Mapped[str] = mapped_column(String(255), primary_key=True)  # "<topic>:<partition>-<offset>"
    delivery_id: Mapped[str] = mapped_column(String(64), index=True)
    replayed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    id: str  # "<partition>-<offset>"
    reason: str
    dead_lettered_at: float | None
    record: DeliveryRecord | None  # None for an unreadable record set aside
    raw: dict
    problem: str | None = None  # why ``record`` is None when the entry looked like a delivery

    @property
    def malformed(self) -> bool:
        return self.record is None

    @property
    def last_error(self) -> str:
        if not self.record or not self.record.attempts:
            return self.reason
        last = self.record.attempts[-1]
        status = last.get("status") or last.get("http_status")
        # masked again for records written before attempt errors were masked where they are made
        return redact_urls(" ".join(str(x) for x in (status, last.get("error")) if x) or self.reason)

    def field(self, name: str):
        """A delivery field of the record, or of the reference a set-aside entry carries."""
        if self.record is not None:
            return getattr(self.record, name)
        ref = self.raw.get("ref")
        value = ref.get(name) if isinstance(ref, dict) else None
        return value if isinstance(value, str) else None

    def summary(self) -> dict:
        r = self.record
        return {
            "id": self.id,
            "reason": self.reason,
            "dead_lettered_at": _iso(self.dead_lettered_at),
            "delivery_id": self.field("delivery_id"),
            "tenant_id": self.field("tenant_id"),
            "subscription_id": self.field("subscription_id"),
            "event_type": self.field("event_type"),
            "event_id": self.field("event_id"),
            # the history is bounded (first and last attempts): the count is the record's own
            "attempts": max(r.attempt, len(r.attempts)) if r else 0,
            "last_error": self.last_error,
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class Filter:
    """Which dead letters to list or replay: one tenant's (``tenant_id``), or, for operators
    only, every tenant's (``all_tenants=True``); one of the two must be given."""

    tenant_id: str | None = None
    all_tenants: bool = False
    subscription_id: str | None = None
    event_type: str | None = None
    since: float | None = None
    until: float | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.all_tenants == (self.tenant_id is not None):
            raise ValidationError("tenant: give a tenant, or ask for all tenants explicitly (not both)")
        if self.tenant_id is not None:
            validate_tenant(self.tenant_id)

    def __call__(self, d: DeadLetter) -> bool:
        if self.tenant_id and d.field("tenant_id") != self.tenant_id:
            return False
        if self.subscription_id and d.field("subscription_id") != self.subscription_id:
            return False
        if self.event_type and not matches((self.event_type,), d.field("event_type") or ""):
            return False
        when = d.dead_lettered_at
        if self.since is not None and (when is None or when < self.since):
            return False
        if self.until is not None and (when is None or when >= self.until):
            return False
        if self.reason and self.reason.lower() not in d.reason.lower():
            return False
        return True


# dead_lettered_at is whatever the record says: only a Unix time from 1970 to ~5138 is kept
# (datetime cannot hold much more, and one entry's odd number must not break a whole listing)
_MAX_TIMESTAMP = 1e11


def _timestamp(value) -> float | None:
    if type(value) not in (int, float) or not 0 <= value <= _MAX_TIMESTAMP:  # also NaN: every comparison is false
        return None
    return float(value)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    try:
        return format_unix(ts)
    except (OverflowError, OSError, ValueError):  # never in range after _timestamp; a listing must not fail on one
        return None


def decode(partition: int, offset: int, value: bytes | None) -> DeadLetter:
    entry_id = f"{partition}-{offset}"
    try:
        raw = orjson.loads(value) if value is not None else {}
        if not isinstance(raw, dict):
            raise ValueError("not an object")
    except (ValueError, orjson.JSONDecodeError):
        return DeadLetter(entry_id, "unreadable dead-letter record", None, None, {})
    from hookstream.delivery.worker import (  # the worker's own rules
        MalformedRecord,
        decode_record,
    )

    record = problem = None
    if "delivery_id" in raw:
        try:
            record = decode_record(value)
        except MalformedRecord as exc:
            problem = str(exc)
    return DeadLetter(entry_id, str(raw.get("reason") or "unknown")[:1000], _timestamp(raw.get("dead_lettered_at")), record, raw, problem)


def read(settings: Settings, *, since: float | None = None, timeout: float = 10.0) -> Iterator[DeadLetter]:
    """Every dead letter on the topic up to its current end (from ``since`` when given, using
    the broker's time index to skip older segments)."""
    topic = settings.topic(DEAD_LETTERS)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "hookstream-dlq-reader",
                         "enable.auto.commit": False, "enable.partition.eof": True, "log_level": 3})
    try:
        md = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if md is None or md.error is not None:
            raise BrokerError(f"topic {topic} does not exist; run `hookstream topics ensure`")
        ends = {}
        for p in md.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            if high > low:
                ends[p] = high
        if not ends:
            return
        starts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends]
        if since is not None:
            starts = consumer.offsets_for_times([TopicPartition(topic, p, int(max(since, 0.0) * 1000)) for p in ends], timeout=timeout)  # before 1970: -1 and -2 mean "latest" and "earliest"
            starts = [tp if tp.offset >= 0 else TopicPartition(topic, tp.partition, ends[tp.partition]) for tp in starts]
        remaining = {tp.partition for tp in starts if tp.offset < ends[tp.partition]}
        consumer.assign([tp for tp in starts if tp.partition in remaining])
        while remaining:
            msg = consumer.poll(timeout)
            if msg is None:
                raise BrokerError(f"reading {topic} stalled (no answer within {timeout:g}s)")
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    remaining.discard(msg.partition())
                    continue
                raise BrokerError(f"reading {topic} failed: {msg.error().str()}")
            if msg.offset() >= ends[msg.partition()]:
                remaining.discard(msg.partition())
                continue
            yield decode(msg.partition(), msg.offset(), msg.value())
            if msg.offset() + 1 >= ends[msg.partition()]:
                remaining.discard(msg.partition())
    finally:
        consumer.close()


def find(settings: Settings, entry_id: str, *, tenant_id: str) -> DeadLetter:
    """One of ``tenant_id``'s dead letters by id; another tenant's is not found."""
    validate_tenant(tenant_id)
    d = find_any_tenant(settings, entry_id)
    if d.field("tenant_id") != tenant_id:  # an unreadable entry has none: operators only
        raise NotFoundError(f"no dead letter {entry_id} for tenant {tenant_id}")
    return d


_MAX_PARTITION = 2**31 - 1
_MAX_OFFSET = 2**63 - 1


def find_any_tenant(settings: Settings, entry_id: str) -> DeadLetter:
    """Operators only: a dead letter by id, whichever tenant's it is (or an unreadable one)."""
    m = re.fullmatch(r"(\d{1,20})-(\d{1,20})", entry_id.strip())  # int() refuses over 4,300 digits
    if not m:
        raise ValidationError(f"{entry_id!r} is not a dead-letter id (they look like 2-153: partition-offset)")
    partition, offset = int(m.group(1)), int(m.group(2))
    if partition > _MAX_PARTITION or offset > _MAX_OFFSET:  # Kafka's own limits (int32, int64)
        raise ValidationError(f"{entry_id!r} is not a dead-letter id: a partition is at most {_MAX_PARTITION} "
                              f"and an offset at most {_MAX_OFFSET}")
    topic = settings.topic(DEAD_LETTERS)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "hookstream-dlq-reader",
                         "enable.auto.commit": False, "log_level": 3})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        if not low <= offset < high:
            raise NotFoundError(f"no dead letter {entry_id} (partition {partition} holds offsets {low}..{high - 1})")
        consumer.assign([TopicPartition(topic, partition, offset)])
        msg = consumer.poll(10)
        if msg is None or msg.error() or msg.offset() != offset:
            raise NotFoundError(f"no dead letter {entry_id}")
        return decode(partition, offset, msg.value())
    except KafkaException:  # the partition does not exist
        raise NotFoundError(f"no dead letter {entry_id}: {topic} has no partition {partition}") from None
    finally:
        consumer.close()


@dataclasses.dataclass
class ReplayReport:
    replayed: list[str] = dataclasses.field(default_factory=list)
    already: dict[str, str] = dataclasses.field(default_factory=dict)  # entry -> when it was replayed
    not_replayable: dict[str, str] = dataclasses.field(default_factory=dict)  # entry -> why
    failed: dict[str, str] = dataclasses.field(default_factory=dict)  # entry -> the broker's error (not recorded: rerun)


def replay(
    settings: Settings,
    entries: Iterable[DeadLetter],
    *,
    dry_run: bool = False,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ReplayReport:
    entries = list(entries)
    topic = settings.topic(DEAD_LETTERS)
    key = lambda d: f"{topic}:{d.id}"  # noqa: E731
    engine = open_database(settings)
    sessions = session_factory(engine)
    report = ReplayReport()
    with sessions() as session:
        done = {row.entry_id: row.replayed_at for row in session.scalars(select(ReplayRow).where(ReplayRow.entry_id.in_([key(d) for d in entries])))}
    todo = []
    owners = _owners(settings) if any(d.record is not None for d in entries) else {}
    for d in entries:
        if d.record is None:
            report.not_replayable[d.id] = f"not a readable delivery: {d.problem}" if d.problem else f"not a delivery ({d.reason})"
        elif owners.get(d.record.subscription_id, d.record.tenant_id) != d.record.tenant_id:
            # another tenant's subscription: the worker would refuse it again, and it must never be sent
            report.not_replayable[d.id] = f"tenant_mismatch: subscription {d.record.subscription_id} belongs to another tenant"
        elif key(d) in done and not force:
            report.already[d.id] = done[key(d)].isoformat()
        else:
            todo.append(d)
    if dry_run:
        report.replayed = [d.id for d in todo]
        return report
    producer = make_producer(settings, **{"client.id": "hookstream-dlq-replay"})
    acked: set[str] = set()
    deliveries = settings.topic(DELIVERIES)

    def delivered(entry: str):
        def callback(err, _msg) -> None:
            if err is None:
                acked.add(entry)
            else:
                report.failed[entry] = err.str()
        return callback

    for i, d in enumerate(todo):
        fresh = dataclasses.replace(d.record, attempt=0, attempts=(), due_at=None, replay_of=d.id)
        error = produce_one(producer, deliveries, fresh.subscription_id.encode(), fresh.to_bytes(), delivered(d.id))
        if error is not None:
            report.failed[d.id] = error
        if progress:
            progress(i + 1)
    producer.flush(60)
    now = datetime.now(UTC)
    # only what the broker acknowledged counts as replayed: the rest is sent again by a rerun
    with sessions.begin() as session:
        for d in todo:
            if d.id in acked:
                session.merge(ReplayRow(entry_id=key(d), delivery_id=d.record.delivery_id, replayed_at=now))
    engine.dispose()
    report.replayed = [d.id for d in todo if d.id in acked]
    for d in todo:
        if d.id not in acked and d.id not in report.failed:
            report.failed[d.id] = "not acknowledged by the broker within 60s"
    return report


def _owners(settings: Settings) -> dict[str, str]:
    """subscription id -> tenant id of every subscription in the store (a deleted one is left to
    the worker, which drops its records)."""
    from hookstream.subscriptions.store import SubscriptionStore

    store = SubscriptionStore.open(settings)
    try:
        return {sub.id: sub.tenant_id for sub in store.list_all_tenants()}  # a cross-tenant check by design
    finally:
        store.engine.dispose()
