"""The transactional outbox: events written with the business change, published by a relay.

A service adds its event to the ``outbox`` table in the same database transaction as the change
it describes (``Outbox(session).publish(event)``, or ``add_to_outbox``): both commit or neither
does. Add it *after* writing the entity, so that concurrent writers of one entity (serialized by
the entity's row lock) also get their outbox rows in order.

``OutboxRelay`` publishes pending rows in ``seq`` order, batch by batch: it sends a batch, waits
until the broker acknowledged it, and only then marks the rows sent. Killed anywhere, it loses
nothing: rows it published but did not mark are published again on restart, as the same stored
bytes, so with the same event id (at least once; consumers deduplicate by id). After a failed
delivery only the rows before it are marked; the rest are retried in order on the next batch.

A row that can never be published is set aside instead, so it cannot hold up the rows behind
it: larger than ``Settings.max_event_bytes`` (the limit may have been lowered since it was
written), refused by the broker for a reason that sending again cannot change (record too large,
invalid or corrupt: ``PERMANENT_CODES``), or not a valid event any more (edited by hand, or its
type unknown to this release). ``set_aside_at`` and ``set_aside_reason`` (``too_large: ...``,
``refused: ...``, ``unparseable: ...``, and ``internal_error: ...`` for a row whose reading raised
what nothing foresaw) record it on the row, which stays in the table for an
operator; ``hookstream outbox status`` counts such rows, and the relay reports each one as it
sets it aside. Its place in the entity's order is lost, which is the price of never stopping.

One relay at a time: on PostgreSQL each batch runs in one transaction that first takes a
transaction-scoped advisory lock (``pg_try_advisory_xact_lock``) and selects its rows ``FOR UPDATE
SKIP LOCKED``; on SQLite a lock file next to the database plays the advisory lock's part, and rows
are read and marked in two short transactions so that the services' writes never wait for Kafka.
Any number of relays may run: the others wait their turn, which keeps each entity's events in
order (rows merely skipped by SKIP LOCKED would let two relays publish one entity's events
concurrently).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import BigInteger, DateTime, Engine, Index, Integer, String, Text, UniqueConstraint, func, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from hookstream.core.db import Base
from hookstream.core.settings import setting_from_env
from hookstream.producers._errors import PERMANENT_CODES, PublishError, EventTooLargeError, check_size
from hookstream.producers._publisher import PublishAck, OutgoingRecord, Publisher
from hookstream.schemas import ENTITY_FIELDS, Event, InvalidEventError, encode_event, parse_event

log = logging.getLogger("hookstream.outbox")

RELAY_LOCK_KEY = 0x686F6F6B5F6F7462  # "hook_otb": the advisory lock relays take turns with


class OutboxRow(Base):
    __tablename__ = "outbox"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str] = mapped_column(String(128))
    entity_id: Mapped[str] = mapped_column(String(128))  # the Kafka key
    payload: Mapped[str] = mapped_column(Text)  # the event's JSON exactly as it is published
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    set_aside_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # never to be published
    set_aside_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        UniqueConstraint("event_id", name="uq_outbox_event_id"),
        Index("ix_outbox_pending", "seq", postgresql_where=text("sent_at IS NULL AND set_aside_at IS NULL"),
              sqlite_where=text("sent_at IS NULL AND set_aside_at IS NULL")),
    )


_table = OutboxRow.__table__


def add_to_outbox(db: Session | Connection, event: Event, *, max_event_bytes: int | None = None) -> Event:
    """Validate ``event`` and add it to the outbox in ``db``'s current transaction.

    Raises ``InvalidEventError`` for an invalid event, and ``EventTooLargeError`` for one whose
    serialised envelope is over ``max_event_bytes`` (default: ``HOOKSTREAM_MAX_EVENT_BYTES``);
    either way it writes nothing. Commit is the caller's.
    """
    payload = encode_event(event)
    check_size(event.id, event.type, payload, max_event_bytes or setting_from_env("max_event_bytes"))
    db.execute(
        insert(_table).values(
            event_id=event.id,
            event_type=event.type,
            tenant_id=event.tenant_id,
            entity_id=event.data[ENTITY_FIELDS[event.type.split(".", 1)[0]]],
            payload=payload.decode(),
            created_at=datetime.now(timezone.utc),
        )
    )
    return event


class Outbox:
    """An event sink writing to the outbox in a session's transaction (see ``DomainEvents``)."""

    def __init__(self, db: Session | Connection, *, max_event_bytes: int | None = None) -> None:
        self.db = db
        self.max_event_bytes = max_event_bytes

    def publish(self, event: Event) -> Event:
        return add_to_outbox(self.db, event, max_event_bytes=self.max_event_bytes)


# ----------------------------------------------------------------------------- the relay
@dataclasses.dataclass(frozen=True)
class PendingRow:
    seq: int
    event_id: str
    event_type: str
    entity_id: str
    payload: str


@dataclasses.dataclass(frozen=True)
class SetAside:
    """A row the relay will never publish, and why (``too_large: ...``, ``refused: ...``, ``unparseable: ...``)."""

    seq: int
    event_id: str
    reason: str


@dataclasses.dataclass(frozen=True)
class BatchResult:
    published: int  # rows published and marked sent
    error: PublishError | None = None  # the delivery that stopped the batch, if one did
    waited: bool = False  # another relay had the turn
    set_aside: tuple[SetAside, ...] = ()  # rows set aside in this batch

    @property
    def handled(self) -> int:
        """Rows this batch took off the pending list (published or set aside)."""
        return self.published + len(self.set_aside)


@dataclasses.dataclass(frozen=True)
class OutboxStatus:
    pending: int
    sent: int
    failing: int  # pending rows whose last attempt failed
    oldest_pending: datetime | None
    set_aside: int = 0  # rows the relay will never publish (see set_aside_reason)


class _Unpublishable(Exception):
    """A row that no retry can publish; ``str()`` is its set-aside reason."""


def _log_set_aside(row: SetAside) -> None:
    log.warning("outbox row %d (event %s) set aside: %s", row.seq, row.event_id, row.reason)


class OutboxRelay:
    """Publishes the outbox. ``relay_batch`` once, ``drain`` until empty, ``run`` until stopped.

    ``on_set_aside`` is called with each row set aside (default: a warning on the
    ``hookstream.outbox`` logger).
    """

    def __init__(self, engine: Engine, publisher: Publisher, *, batch_size: int = 500, ack_timeout: float = 150.0,
                 on_set_aside: Callable[[SetAside], Any] = _log_set_aside) -> None:
        self.engine = engine
        self.publisher = publisher
        self.batch_size = batch_size
        self.ack_timeout = ack_timeout  # longer than the publisher's delivery timeout: every send gets a report
        self.on_set_aside = on_set_aside
        self._turns = _PostgresTurns(engine) if engine.dialect.name == "postgresql" else _SqliteTurns(engine)

    def relay_batch(self) -> BatchResult:
        with self._turns.turn(self.batch_size) as turn:
            if turn is None:
                return BatchResult(0, waited=True)
            if not turn.rows:
                return BatchResult(0)
            sent, set_aside, failure = self._publish(turn.rows)
            turn.finish(sent, set_aside, failure)
            for row in set_aside:
                self.on_set_aside(row)
            return BatchResult(len(sent), failure[1] if failure else None, set_aside=tuple(set_aside))

    def _publish(self, rows: list[PendingRow]) -> tuple[list[int], list[SetAside], tuple[int, PublishError] | None]:
        """Send rows in order and wait for every report. Returns the seqs acknowledged and the rows
        set aside before the first failure that may pass (rows after it stay pending), and it."""
        outcomes: list[tuple[PendingRow, PublishAck | Exception]] = []  # in seq order
        for row in rows:
            try:
                outcomes.append((row, self.publisher.send_record(self._record(row))))
            except (_Unpublishable, PublishError) as exc:  # refused before sending
                outcomes.append((row, exc))
                if not _permanent(exc):
                    break  # e.g. a broker error: nothing after this row may overtake it
        self.publisher.wait([d for _, d in outcomes if isinstance(d, PublishAck)], self.ack_timeout)
        errors = [(row, _error_of(outcome)) for row, outcome in outcomes]  # every outcome collected first
        sent: list[int] = []
        set_aside: list[SetAside] = []
        for row, error in errors:
            if error is None:
                sent.append(row.seq)
            elif _permanent(error):
                set_aside.append(SetAside(row.seq, row.event_id, _set_aside_reason(error)))
            else:
                return sent, set_aside, (row.seq, error)
        return sent, set_aside, None

    def _record(self, row: PendingRow) -> OutgoingRecord:
        """The row as it goes out: its stored bytes, once they read as a valid event of its id."""
        try:
            return self._read(row)
        except _Unpublishable:
            raise
        except Exception as exc:  # a bug meeting this row: raised, it would stop the relay here on every start
            log.error("outbox row %d (event %s): unexpected error reading it; setting it aside", row.seq, row.event_id, exc_info=exc)
            raise _Unpublishable(f"internal_error: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from None

    def _read(self, row: PendingRow) -> OutgoingRecord:
        value = row.payload.encode()
        try:
            event = parse_event(value)
        except InvalidEventError as exc:
            raise _Unpublishable(f"unparseable: {exc.reason}") from None
        if event.id != row.event_id or event.type != row.event_type:
            raise _Unpublishable(f"unparseable: the payload is event {event.id} ({event.type}), the row says {row.event_id} ({row.event_type})")
        return OutgoingRecord(row.event_id, self.publisher.topic_for(row.event_type), row.entity_id.encode(), value, row.event_type)

    def drain(self, stop: threading.Event | None = None) -> int:
        """Publish until nothing is pending; raises ``PublishError`` if a delivery fails."""
        stop = stop or threading.Event()
        total = 0
        while not stop.is_set():
            result = self.relay_batch()
            total += result.published
            if result.error:
                raise PublishError(f"{result.error} ({total} events published before it)",
                                    event_ids=result.error.event_ids, code=result.error.code)
            if result.waited:  # another relay is publishing; our turn comes after its batch
                stop.wait(0.2)
            elif result.handled < self.batch_size:
                break
        return total

    def run(self, stop: threading.Event, *, poll_interval: float = 1.0, on_error: Callable[[Exception], Any] = lambda e: None) -> int:
        """Relay until ``stop`` is set; a failing broker or database is reported and retried."""
        total = 0
        while not stop.is_set():
            try:
                result = self.relay_batch()
            except (SQLAlchemyError, PublishError) as exc:
                on_error(exc)
                stop.wait(poll_interval)
                continue
            total += result.published
            if result.error:
                on_error(result.error)
            if result.error or result.waited or result.handled < self.batch_size:
                stop.wait(poll_interval)
        return total


def _error_of(outcome: PublishAck | Exception) -> Exception | None:
    if not isinstance(outcome, PublishAck):
        return outcome
    try:
        outcome.result(timeout=0)  # collects the outcome, so flush() does not report it again
        return None
    except PublishError as exc:
        return exc


def _permanent(error: Exception) -> bool:
    """Whether no retry can publish the row (it is set aside) or a later attempt may."""
    return isinstance(error, (_Unpublishable, EventTooLargeError)) or (
        isinstance(error, PublishError) and error.code in PERMANENT_CODES
    )


def _set_aside_reason(error: Exception) -> str:
    if isinstance(error, _Unpublishable):
        return str(error)[:2000]
    if isinstance(error, EventTooLargeError):
        return f"too_large: {error}"[:2000]
    return f"refused: {error}"[:2000]


def outbox_status(engine: Engine) -> OutboxStatus:
    pending_q = select(func.count(), func.min(_table.c.created_at), func.count(_table.c.last_error)).where(
        _table.c.sent_at.is_(None), _table.c.set_aside_at.is_(None)
    )
    with engine.connect() as conn:
        pending, oldest, failing = conn.execute(pending_q).one()
        sent = conn.execute(select(func.count()).where(_table.c.sent_at.is_not(None))).scalar_one()
        set_aside = conn.execute(select(func.count()).where(_table.c.set_aside_at.is_not(None))).scalar_one()
    if oldest is not None and oldest.tzinfo is None:  # SQLite keeps no zone; we always write UTC
        oldest = oldest.replace(tzinfo=timezone.utc)
    return OutboxStatus(pending, sent, failing, oldest, set_aside)


# ----------------------------------------------------------------------------- taking turns
_PENDING = select(_table.c.seq, _table.c.event_id, _table.c.event_type, _table.c.entity_id, _table.c.payload).where(
    _table.c.sent_at.is_(None), _table.c.set_aside_at.is_(None)
).order_by(_table.c.seq)


class _Turn:
    def __init__(self, rows: list[PendingRow], mark: Callable[[Callable[[Connection], None]], None]) -> None:
        self.rows = rows
        self._mark = mark

    def finish(self, sent: list[int], set_aside: list[SetAside], failure: tuple[int, Exception] | None) -> None:
        def write(conn: Connection) -> None:
            now = datetime.now(timezone.utc)
            if sent:
                conn.execute(update(_table).where(_table.c.seq.in_(sent)).values(sent_at=now, last_error=None))
            for row in set_aside:
                conn.execute(update(_table).where(_table.c.seq == row.seq).values(
                    set_aside_at=now, set_aside_reason=row.reason, last_error=row.reason, attempts=_table.c.attempts + 1))
            if failure:
                seq, exc = failure
                conn.execute(update(_table).where(_table.c.seq == seq).values(attempts=_table.c.attempts + 1, last_error=str(exc)[:2000]))

        self._mark(write)


def _rows(result) -> list[PendingRow]:
    return [PendingRow(*r) for r in result]


class _PostgresTurns:
    """One transaction per batch: advisory lock, rows FOR UPDATE SKIP LOCKED, publish, mark, commit."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextlib.contextmanager
    def turn(self, limit: int) -> Iterator[_Turn | None]:
        with self.engine.begin() as conn:
            if not conn.execute(select(func.pg_try_advisory_xact_lock(RELAY_LOCK_KEY))).scalar():
                yield None
                return
            rows = _rows(conn.execute(_PENDING.limit(limit).with_for_update(skip_locked=True)))
            yield _Turn(rows, lambda write: write(conn))


class _SqliteTurns:
    """A lock file beside the database; rows read and marked in two short transactions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        database = engine.url.database
        self.lock_path = f"{database}.relay-lock" if database and database != ":memory:" else None
        self._thread_lock = threading.Lock()

    @contextlib.contextmanager
    def turn(self, limit: int) -> Iterator[_Turn | None]:
        with self._exclusive() as mine:
            if not mine:
                yield None
                return
            with self.engine.begin() as conn:
                rows = _rows(conn.execute(_PENDING.limit(limit)))

            def mark(write: Callable[[Connection], None]) -> None:
                with self.engine.begin() as conn:
                    write(conn)

            yield _Turn(rows, mark)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[bool]:
        if self.lock_path is None:
            with self._thread_lock:
                yield True
            return
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True  # closing the descriptor releases the lock, as does the process dying
        finally:
            os.close(fd)
