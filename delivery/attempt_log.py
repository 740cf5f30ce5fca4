"""The attempt log: every HTTP attempt a delivery worker makes, in the ``delivery_attempts`` table.

Written off the hot path: the event loop hands rows to ``AttemptLogWriter`` (a queue), and one
thread inserts them in batches (up to ``BATCH_MAX`` rows, or whatever arrived within
``BATCH_WAIT`` seconds), one transaction per batch. A row's ``on_written`` callback runs on the
event loop once its batch is committed: the worker counts an attempt's outcome as *recorded*
only then, and does not commit the Kafka offset before (a success the log lost would be a
success nobody can see).

When a batch fails, the error decides what happens:

- *the rows' fault* (a data or integrity error: a value too long, bad encoding, a NUL byte on
  PostgreSQL, a constraint; or a value the driver cannot bind): the batch is split in halves
  and each half written again, down to the single rows the database refuses. Each of those is
  *set aside* in ``delivery_attempts_rejected`` (the row as ASCII JSON text, always storable,
  and the database's one-line reason; no tenant column, so operators' only: ``rejected_rows``), counted in ``hookstream_attempt_log_rejected_total`` and
  logged; the rest of the batch is written. A set-aside row is durable, so its record's offset
  may be committed. Bisecting costs ~2 log2(n) transactions for one bad row in n, and only then.
- *the database's fault* (connection lost, database locked, any ``OperationalError``): the
  batch is retried with backoff (0.1 s doubling to 5 s); meanwhile nothing is acknowledged, so
  the worker's in-flight bound stops consumption. ``hookstream_attempt_log_outage_seconds``
  says how long the log has been unwritable. Past ``HOOKSTREAM_ATTEMPT_LOG_MAX_OUTAGE`` (default
  5 minutes) the writer gives up with ``AttemptLogUnavailable`` in ``error``; the worker logs it
  once and stops with exit code 1. The records whose rows were not written were never
  acknowledged, so their offsets stay uncommitted and the next worker delivers them again. On
  SQLite a lock held elsewhere is waited out inside a try for a quarter of that bound (not the
  engine's 30 s), so the bound holds there too.
- anything else (a schema the migrations did not create, a bug) is not retried: the writer stops
  at once with the error, and the worker with it.

``status``: ``succeeded`` (2xx), ``failed`` (will be retried), ``dead`` (this attempt sent the
delivery to the dead-letter topic). The response excerpt is bounded (``EXCERPT_CHARS``); no
header, secret or signature is ever stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Engine, Float, Integer, String, Text, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Mapped, mapped_column

from hookstream.delivery import metrics as m
from hookstream.core.time import format_time
from hookstream.core.db import Base, bind_all_tenants, bind_tenant
from hookstream.core.errors import HookstreamError
from hookstream.core.settings import default_of
from hookstream.subscriptions.store import validate_tenant

__all__ = [
    "AttemptLogUnavailable", "AttemptLogWriter", "AttemptRow", "RejectedAttemptRow", "STATUSES", "attempts_of",
    "attempts_of_any_tenant", "list_deliveries", "list_deliveries_all_tenants", "rejected_rows",
]

log = logging.getLogger("hookstream.delivery")

STATUSES = ("succeeded", "failed", "dead")
EXCERPT_CHARS = 1024
BATCH_MAX = 2000
# A batch's commit writes every index page it touched to the WAL (delivery_id is random, so a
# row touches its own page): bigger batches share pages. 0.1 s is ~600 rows at 6,000/s, held
# within the worker's in-flight bound (2,000); offsets are committed every 0.2 s anyway.
BATCH_WAIT = 0.1
# SQLite only, on the writer's connection: checkpoint the WAL every 4,000 pages (16 MiB at
# 4 KiB) rather than 1,000, so a page rewritten by several batches is copied back once.
# Micro-benchmark (150k rows, 3 indexes): 24.6 -> 18.8 us CPU per row with 600-row batches.
WAL_AUTOCHECKPOINT = 4000
DEFAULT_MAX_OUTAGE = default_of("attempt_log_max_outage_seconds")  # seconds; HOOKSTREAM_ATTEMPT_LOG_MAX_OUTAGE
MAX_BACKOFF = 5.0
OUTAGE_REMINDER = 30.0  # seconds between two "still unwritable" log lines
REASON_CHARS = 500


class AttemptLogUnavailable(HookstreamError):
    """The attempt log could not be written (for longer than allowed, or not at all)."""


class AttemptRow(Base):
    __tablename__ = "delivery_attempts"
    __table_args__ = (CheckConstraint("status in ('succeeded', 'failed', 'dead')", name="ck_delivery_attempts_status"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(64), index=True)
    event_id: Mapped[str] = mapped_column(String(128))  # the envelope allows 128 (migration 0007)
    event_type: Mapped[str] = mapped_column(String(128))
    tenant_id: Mapped[str] = mapped_column(String(128), index=True)
    subscription_id: Mapped[str] = mapped_column(String(64), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    response_excerpt: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RejectedAttemptRow(Base):
    """An attempt row the database refused for good, kept with the reason (migration 0007)."""

    __tablename__ = "delivery_attempts_rejected"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True)
    rejected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text)
    row: Mapped[str] = mapped_column(Text)  # JSON object of the row's columns, ASCII only


def make_row(record, report, status: str) -> dict[str, Any]:
    """A ``delivery_attempts`` row from a ``DeliveryRecord`` and its ``AttemptReport``."""
    return dict(zip(_COLUMNS, row_values(record, report, status)))


def row_values(record, report, status: str) -> tuple:
    """``make_row``'s values as a tuple in ``_COLUMNS`` order (what the worker submits: no dict
    to build and take apart per attempt). ``attempted_at`` stays unix seconds here."""
    return (
        record.delivery_id, record.event_id, record.event_type, record.tenant_id, record.subscription_id,
        report.attempt, status, report.status, round(report.duration * 1000.0, 3), _text(report.error),
        _text(report.excerpt.decode("utf-8", "replace")[:EXCERPT_CHARS]) if report.excerpt else None,
        report.at,  # unix seconds; converted in the writer thread
    )


def _text(value: str | None) -> str | None:
    """PostgreSQL text refuses NUL, and an endpoint's body (or what it made the client say) may
    hold one: a row the database refuses would stall the writer for every endpoint."""
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value


class AttemptLogWriter:
    """Batches rows into the table on its own thread; callbacks come back on ``loop``.

    ``error`` is why the thread stopped early (``AttemptLogUnavailable``, or a bug); the worker
    checks ``alive`` and stops with it."""

    def __init__(self, engine: Engine, loop: asyncio.AbstractEventLoop | None = None, *,
                 max_outage: float = DEFAULT_MAX_OUTAGE) -> None:
        self.engine = engine
        self.loop = loop
        self.max_outage = max_outage
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="attempt-log", daemon=True)
        self.written = 0
        self.rejected = 0
        self.failures = 0
        self.error: BaseException | None = None
        self._outage_since: float | None = None
        self._reminded = 0.0
        self._sql: str | None = None
        self._sqlite = engine.dialect.name == "sqlite"

    def start(self) -> "AttemptLogWriter":
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, row: tuple | dict[str, Any], on_written: Callable[[], None] | None = None) -> None:
        self._queue.put((row, on_written))

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop (giving up at once if the database is down)."""
        self._stop.set()
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while True:
                batch = self._take()
                if batch is None:
                    return
                if batch:
                    self._write(batch)
        except AttemptLogUnavailable as exc:
            self.error = exc  # the owner (the worker) reports it, once, and stops
            if self._stop.is_set():
                log.warning("%s", exc)  # nobody is watching any more: say it here
        except BaseException as exc:  # a bug: the worker sees the thread gone and stops with it
            self.error = exc
            log.exception("the attempt-log writer failed")

    def _take(self) -> list | None:
        try:
            first = self._queue.get(timeout=0.5)
        except queue.Empty:
            return None if self._stop.is_set() else []
        if first is None:
            return self._drain_rest()
        batch = [first]
        deadline = time.monotonic() + BATCH_WAIT
        while len(batch) < BATCH_MAX:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # stop after this batch
                break
            batch.append(item)
        return batch

    def _drain_rest(self) -> list | None:
        rest = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                rest.append(item)
        if rest:
            self._write(rest)
        return None

    def _write(self, batch: list) -> None:
        # the worker submits row_values() tuples; make_row() dicts are accepted too
        rows = [
            (*row[:-1], datetime.fromtimestamp(row[-1], UTC)) if type(row) is tuple
            else tuple(datetime.fromtimestamp(row[c], UTC) if c == "attempted_at" else row[c] for c in _COLUMNS)
            for row, _cb in batch
        ]
        self._store(rows)
        callbacks = [cb for _row, cb in batch if cb is not None]
        if callbacks and self.loop is not None and not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(_run_all, callbacks)
            except RuntimeError:  # the loop closed while we wrote
                pass

    def _store(self, rows: list[tuple]) -> None:
        """Write ``rows``; the ones the database refuses are set aside (halving to find them)."""
        pending = [rows]
        while pending:
            part = pending.pop()
            fault = self._transaction(self._insert, part)
            if fault is None:
                self.written += len(part)
            elif len(part) > 1:
                mid = len(part) // 2
                pending += (part[mid:], part[:mid])  # the first half is written first
            else:
                self._set_aside(part[0], fault)

    def _set_aside(self, row: tuple, fault: BaseException) -> None:
        reason, kind = _reason(fault), _fault_kind(fault)
        doc = json.dumps(dict(zip(_COLUMNS, row)), default=str, ensure_ascii=True)  # escapes NUL, surrogates
        again = self._transaction(self._insert_rejected, reason, doc)
        if again is not None:  # ASCII text cannot be refused; if it is, something else is wrong
            raise AttemptLogUnavailable(f"attempt log: could not set aside a refused row either: {_reason(again)}")
        self.rejected += 1
        m.ATTEMPT_LOG_REJECTED.labels(kind).inc()
        log.error("attempt log: set aside a row the database refused (delivery %.64r attempt %s): %s",
                  row[0], row[5], reason)

    def _transaction(self, work: Callable, *args) -> BaseException | None:
        """Run ``work(conn, *args)`` in one transaction, retrying while the database is down.

        Returns ``None`` once committed, or the error when the rows are at fault; raises
        ``AttemptLogUnavailable`` past the outage bound, at a stop during an outage, or for an
        error that retrying cannot mend."""
        backoff = 0.1
        while True:
            began = time.monotonic()  # an outage starts when its first failed try began
            try:
                with self.engine.connect() as conn:
                    if self._sqlite:
                        self._tune(conn.connection)
                    with conn.begin():
                        work(conn, *args)
            except Exception as exc:
                if _fault_kind(exc) is not None:
                    self._outage_over()
                    return exc
                if not _transient(exc):
                    raise AttemptLogUnavailable(f"attempt log: cannot write to the database: {_reason(exc)}") from None
                backoff = self._outage(exc, backoff, began)
            else:
                self._outage_over()
                return None

    def _outage(self, exc: BaseException, backoff: float, began: float) -> float:
        """Account for one failed try during an outage; wait before the next. Returns the next backoff."""
        now = time.monotonic()
        m.ATTEMPT_LOG_WRITE_ERRORS.inc()
        if self._outage_since is None:
            self._outage_since, self._reminded = began, now
            log.warning("attempt log unwritable (retrying for up to %.0fs): %s", self.max_outage, _reason(exc))
        down = now - self._outage_since
        m.ATTEMPT_LOG_OUTAGE.set(down)
        self.failures += 1  # after the gauge: whoever sees the failure counted sees the outage too
        if down >= self.max_outage:
            raise AttemptLogUnavailable(
                f"the attempt log stayed unwritable for {down:.0f}s (HOOKSTREAM_ATTEMPT_LOG_MAX_OUTAGE is "
                f"{self.max_outage:g}s): {_reason(exc)}; records whose attempts were not written will be "
                f"delivered again"
            )
        if self._stop.is_set():
            raise AttemptLogUnavailable(
                f"stopped while the attempt log was unwritable ({_reason(exc)}); records whose attempts "
                f"were not written will be delivered again"
            )
        if now - self._reminded >= OUTAGE_REMINDER:
            self._reminded = now
            log.warning("attempt log still unwritable after %.0fs: %s", down, _reason(exc))
        time.sleep(min(backoff, max(self.max_outage - down, 0.01)))
        return min(backoff * 2, MAX_BACKOFF)

    def _outage_over(self) -> None:
        if self._outage_since is not None:
            log.warning("attempt log writable again after %.1fs", time.monotonic() - self._outage_since)
            self._outage_since = None
            m.ATTEMPT_LOG_OUTAGE.set(0)

    def _tune(self, dbapi_conn) -> None:
        """Once per SQLite connection, outside any transaction (so before BEGIN IMMEDIATE waits)."""
        if dbapi_conn.info.get("hookstream_attempt_log"):
            return
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
        # a write lock held elsewhere is waited out for busy_timeout (30 s from make_engine):
        # a quarter of the outage bound here keeps that bound honoured within ~25%
        cur.execute(f"PRAGMA busy_timeout={int(min(30.0, max(0.05, self.max_outage / 4)) * 1000)}")
        cur.close()
        dbapi_conn.info["hookstream_attempt_log"] = True

    def _insert(self, conn, rows: list[tuple]) -> None:
        # the driver's executemany with one prepared statement: several times cheaper than
        # SQLAlchemy's insert() per batch, and this thread shares the GIL with the loop
        conn.exec_driver_sql(self._insert_sql(), rows)

    def _insert_rejected(self, conn, reason: str, doc: str) -> None:
        conn.execute(RejectedAttemptRow.__table__.insert().values(rejected_at=datetime.now(UTC), reason=reason, row=doc))

    def _insert_sql(self) -> str:
        if self._sql is None:
            style = self.engine.dialect.paramstyle
            marks = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(style)
            if marks is None:
                raise RuntimeError(f"unsupported DB-API paramstyle {style!r}")
            self._sql = f"INSERT INTO {AttemptRow.__tablename__} ({', '.join(_COLUMNS)}) VALUES ({', '.join([marks] * len(_COLUMNS))})"
        return self._sql


def _fault_kind(exc: BaseException) -> str | None:
    """``data``, ``integrity`` or ``encoding`` when the rows are at fault (the same rows would be
    refused again), else ``None``. Drivers raise binding errors (a lone surrogate, an integer too
    big for SQLite) as they are, not as DB-API errors."""
    if isinstance(exc, sa_exc.IntegrityError):
        return "integrity"
    if isinstance(exc, sa_exc.DataError):
        return "data"
    if isinstance(exc, (UnicodeError, OverflowError)):
        return "encoding" if isinstance(exc, UnicodeError) else "data"
    return None


def _transient(exc: BaseException) -> bool:
    """An error of the database rather than of the rows or the code: worth retrying."""
    return isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError, sa_exc.TimeoutError)) or (
        isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated
    )


def _reason(exc: BaseException) -> str:
    """The driver's message, first line, ASCII, bounded: no SQL, no parameters (no values)."""
    inner = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
    text = (str(inner).strip().splitlines() or [type(inner).__name__])[0]
    return f"{type(inner).__name__}: {text}".encode("ascii", "backslashreplace").decode()[:REASON_CHARS]


_COLUMNS = (
    "delivery_id", "event_id", "event_type", "tenant_id", "subscription_id", "attempt", "status",
    "http_status", "duration_ms", "error", "response_excerpt", "attempted_at",
)


def _run_all(callbacks: list[Callable[[], None]]) -> None:
    for cb in callbacks:
        cb()


# ---------------------------------------------------------------------------- queries (CLI)
# Tenant-facing reads take a tenant; the *_all_tenants / *_any_tenant ones are operators' only.
# On PostgreSQL each query's transaction is bound to its tenant (or to all), so row-level
# security backs up the tenant filter (hookstream.db).
def list_deliveries(
    engine: Engine,
    *,
    tenant_id: str,
    subscription_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """One row per delivery of ``tenant_id``: its latest attempt (status, HTTP status, time) and
    the attempt count."""
    return _list_deliveries(engine, validate_tenant(tenant_id), subscription_id, status, limit)


def list_deliveries_all_tenants(
    engine: Engine, *, subscription_id: str | None = None, status: str | None = None, limit: int = 50,
) -> list[dict[str, Any]]:
    """Operators only: ``list_deliveries`` over every tenant."""
    return _list_deliveries(engine, None, subscription_id, status, limit)


def attempts_of(engine: Engine, delivery_id: str, *, tenant_id: str) -> list[dict[str, Any]]:
    """Every attempt of one of ``tenant_id``'s deliveries (none for another tenant's)."""
    return _attempts_of(engine, delivery_id, validate_tenant(tenant_id))


def attempts_of_any_tenant(engine: Engine, delivery_id: str) -> list[dict[str, Any]]:
    """Operators only: every attempt of a delivery, whichever tenant's it is."""
    return _attempts_of(engine, delivery_id, None)


def _list_deliveries(engine: Engine, tenant_id: str | None, subscription_id: str | None, status: str | None, limit: int):
    latest = select(
        AttemptRow.delivery_id,
        func.max(AttemptRow.id).label("last_id"),
        func.count().label("attempts"),
    ).group_by(AttemptRow.delivery_id)
    if tenant_id is not None:
        latest = latest.where(AttemptRow.tenant_id == tenant_id)
    if subscription_id is not None:
        latest = latest.where(AttemptRow.subscription_id == subscription_id)
    latest = latest.subquery()
    table = AttemptRow.__table__
    query = (
        select(table, latest.c.attempts)
        .join(latest, table.c.id == latest.c.last_id)
        .order_by(table.c.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(table.c.status == status)
    return _read(engine, tenant_id, query)


def rejected_rows(engine: Engine, limit: int = 50) -> list[dict[str, Any]]:
    """Operators only (every tenant's): the newest rows the database refused, each with its
    reason and the row as a dict."""
    query = select(RejectedAttemptRow.__table__).order_by(RejectedAttemptRow.id.desc()).limit(limit)
    with engine.connect() as conn:
        return [dict(_mapping(r), row=json.loads(r.row)) for r in conn.execute(query)]


def _attempts_of(engine: Engine, delivery_id: str, tenant_id: str | None) -> list[dict[str, Any]]:
    query = select(AttemptRow.__table__).where(AttemptRow.delivery_id == delivery_id)
    if tenant_id is not None:
        query = query.where(AttemptRow.tenant_id == tenant_id)
    return _read(engine, tenant_id, query.order_by(AttemptRow.id))


def _read(engine: Engine, tenant_id: str | None, query) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        if tenant_id is None:
            bind_all_tenants(conn)
        else:
            bind_tenant(conn, tenant_id)
        return [_mapping(r) for r in conn.execute(query)]


def _mapping(row) -> dict[str, Any]:
    d = dict(row._mapping)
    at = d.get("attempted_at")
    if isinstance(at, datetime):
        d["attempted_at"] = format_time(at, timespec="auto")
    return d

