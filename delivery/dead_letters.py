"""Dead letters: read, filter, show and replay what the delivery workers gave up on.

A dead letter is a record on ``deliveries.dlq``: either a ``DeliveryRecord`` with its attempt
history plus ``reason`` and ``dead_lettered_at``, an unreadable record set aside with ``reason``
("malformed: ...") and its original bytes, or a reference (``ref``: source topic, partition,
offset and the delivery's ids) with an excerpt, for a record too large to write whole
("too_large: ..."). Only the first kind is replayable; every entry is read through the delivery
worker's own ``decode_record``, so nothing on this topic that the worker would refuse is ever
put back on ``deliveries``. Each is named by where it sits:
``<partition>-<offset>``, stable for as long as the topic keeps it. The entry's format and
``DeadLetter`` are ``hookstream.core.wire``'s; the topic is read with ``hookstream.core.reading``.

A replay puts the delivery back on the ``deliveries`` topic (keyed by subscription id) with the
same delivery id (so the same ``webhook-id``), a fresh attempt count and ``replay_of`` set. Every
replayed entry is written to the ``dlq_replays`` table, so replaying the same range twice reports
the entries already replayed instead of sending them again (``force`` overrides).

Tenancy: a ``Filter`` names its tenant, or says ``all_tenants=True`` (operators); ``find`` takes
a tenant and ``find_any_tenant`` is the operators' lookup. Another tenant's dead letter, and an
unreadable record (it has no tenant to match), are "not found" for a tenant.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

from sqlalchemy import DateTime, String, select
from sqlalchemy.orm import Mapped, mapped_column

from hookstream.core.db import Base, open_database, session_factory
from hookstream.core.errors import NotFoundError, ValidationError
from hookstream.core.kafka import make_producer, produce_one
from hookstream.core.reading import Offset, Time, read_range, watermarks
from hookstream.core.wire import DeadLetter, decode_dead_letter
from hookstream.core.settings import Settings
from hookstream.core.topics import DEAD_LETTERS, DELIVERIES
from hookstream.subscriptions.filters import matches
from hookstream.subscriptions.store import validate_tenant


class ReplayRow(Base):
    __tablename__ = "dlq_replays"

    entry_id: Mapped[str] = mapped_column(String(255), primary_key=True)  # "<topic>:<partition>-<offset>"
    delivery_id: Mapped[str] = mapped_column(String(64), index=True)
    replayed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


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


def read(settings: Settings, *, since: float | None = None, timeout: float = 10.0) -> Iterator[DeadLetter]:
    """Every dead letter on the topic up to its current end (from ``since`` when given, using
    the broker's time index to skip older segments)."""
    topic = settings.topic(DEAD_LETTERS)
    start = Time(since) if since is not None else None
    for msg in read_range(settings, topic, start=start, timeout=timeout, client_id="hookstream-dlq-reader"):
        yield decode_dead_letter(msg.partition(), msg.offset(), msg.value())


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
    try:
        with contextlib.closing(read_range(settings, topic, start=Offset(offset), end=Offset(offset + 1),
                                           partitions=[partition], client_id="hookstream-dlq-reader")) as records:
            msg = next(records, None)
        if msg is not None:
            return decode_dead_letter(partition, offset, msg.value())
        low, high = watermarks(settings, topic, partition)
    except NotFoundError as exc:  # the partition does not exist
        raise NotFoundError(f"no dead letter {entry_id}: {exc}") from None
    if not low <= offset < high:
        raise NotFoundError(f"no dead letter {entry_id} (partition {partition} holds offsets {low}..{high - 1})")
    raise NotFoundError(f"no dead letter {entry_id}")


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
