"""hookstream.delivery.attempt_log: batched writes off the event loop, callbacks once committed, queries."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time

import pytest

from hookstream.delivery import metrics as m
from hookstream.delivery.attempt import AttemptReport
from hookstream.delivery.attempt_log import (
    AttemptLogUnavailable, AttemptLogWriter, attempts_of, attempts_of_any_tenant, list_deliveries,
    list_deliveries_all_tenants, make_row, rejected_rows,
)
from hookstream.delivery.outcome import GiveUp, GiveUpReason, RetryLater, RetryReason, Success
from hookstream.core.db import make_engine, migrate
from hookstream.core.errors import ValidationError
from hookstream.core.wire import DeliveryRecord


@pytest.fixture
def engine(tmp_path):
    e = make_engine(f"sqlite:///{tmp_path / 'log.db'}")
    migrate(e)
    yield e
    e.dispose()


def rec(n: int, tenant="acme", sub="sub_1") -> DeliveryRecord:
    return DeliveryRecord(
        delivery_id=f"msg_{n}", subscription_id=sub, tenant_id=tenant, event_id=f"ev{n}",
        event_type="invoice.sent", occurred_at="2026-11-28T12:00:00Z", event={},
    )


def report(attempt: int, outcome, status=None, error=None, excerpt=b"") -> AttemptReport:
    return AttemptReport(attempt, 1_800_000_000.0 + attempt, 0.0123, outcome, status, error, excerpt)


async def _write(engine, rows):
    written = []
    writer = AttemptLogWriter(engine).start()
    for i, row in enumerate(rows):
        writer.submit(row, lambda i=i: written.append(i))
    for _ in range(200):
        if len(written) == len(rows):
            break
        await asyncio.sleep(0.01)
    writer.stop()
    return written


def test_rows_are_written_and_each_callback_runs_on_the_loop(engine):
    rows = [make_row(rec(1), report(1, RetryLater(RetryReason.SERVER_ERROR, 500), 500, excerpt=b"boom"), "failed"),
            make_row(rec(1), report(2, Success(200), 200), "succeeded"),
            make_row(rec(2, tenant="beta", sub="sub_2"), report(1, GiveUp(GiveUpReason.CLIENT_ERROR, 400), 400), "dead"),
            make_row(rec(3), report(1, RetryLater(RetryReason.TIMEOUT), error="TimeoutError"), "failed")]
    written = asyncio.run(_write(engine, rows))
    assert sorted(written) == [0, 1, 2, 3]

    shown = attempts_of(engine, "msg_1", tenant_id="acme")
    assert [(a["attempt"], a["status"], a["http_status"]) for a in shown] == [(1, "failed", 500), (2, "succeeded", 200)]
    assert shown[0]["response_excerpt"] == "boom" and shown[0]["duration_ms"] == 12.3
    assert shown[0]["attempted_at"].endswith("Z")

    latest = {d["delivery_id"]: (d["status"], d["attempts"]) for d in list_deliveries_all_tenants(engine)}
    assert latest == {"msg_1": ("succeeded", 2), "msg_2": ("dead", 1), "msg_3": ("failed", 1)}
    assert [d["delivery_id"] for d in list_deliveries(engine, tenant_id="beta")] == ["msg_2"]
    assert [d["delivery_id"] for d in list_deliveries(engine, tenant_id="acme", subscription_id="sub_1", status="failed")] == ["msg_3"]
    assert len(list_deliveries_all_tenants(engine, limit=1)) == 1


def test_queries_take_a_tenant_and_never_show_another_tenants_deliveries(engine):
    rows = [make_row(rec(1), report(1, Success(200), 200), "succeeded"),
            make_row(rec(2, tenant="beta", sub="sub_2"), report(1, Success(200), 200), "succeeded")]
    assert sorted(asyncio.run(_write(engine, rows))) == [0, 1]
    assert [d["delivery_id"] for d in list_deliveries(engine, tenant_id="acme")] == ["msg_1"]
    assert attempts_of(engine, "msg_2", tenant_id="acme") == []  # beta's delivery: not there for acme
    assert [a["tenant_id"] for a in attempts_of(engine, "msg_2", tenant_id="beta")] == ["beta"]
    assert [a["tenant_id"] for a in attempts_of_any_tenant(engine, "msg_2")] == ["beta"]
    assert list_deliveries(engine, tenant_id="initech") == []
    for query in (lambda **kw: list_deliveries(engine, **kw), lambda **kw: attempts_of(engine, "msg_1", **kw)):
        with pytest.raises(TypeError, match="tenant_id"):
            query()
        with pytest.raises(ValidationError, match="^tenant: "):
            query(tenant_id=None)


def test_the_excerpt_is_bounded_and_no_header_is_stored(engine):
    row = make_row(rec(1), report(1, Success(200), 200, excerpt=b"y" * 5000), "succeeded")
    assert len(row["response_excerpt"]) == 1024
    assert not any("signature" in k or "secret" in k for k in row)


def test_a_failing_database_is_retried_not_dropped(engine, monkeypatch):
    calls = []
    real = AttemptLogWriter._insert_sql

    def flaky_sql(self):
        calls.append(1)
        if len(calls) == 1:
            return "INSERT INTO no_such_table VALUES (1)"
        return real(self)

    monkeypatch.setattr(AttemptLogWriter, "_insert_sql", flaky_sql)
    written = asyncio.run(_write(engine, [make_row(rec(9), report(1, Success(200), 200), "succeeded")]))
    assert written == [0] and len(calls) == 2
    assert [a["delivery_id"] for a in attempts_of(engine, "msg_9", tenant_id="acme")] == ["msg_9"]



# ---------------------------------------------------------------------------- refused rows, outages
def wait_until(predicate, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class Callbacks:
    """``on_written`` callbacks of rows 0..n-1, run on a loop in a thread of its own."""

    def __init__(self) -> None:
        self.done: list[int] = []
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def of(self, i: int):
        return lambda: self.done.append(i)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@pytest.fixture
def callbacks():
    c = Callbacks()
    yield c
    c.close()


def poisoned_batch(poison: dict) -> list[dict]:
    """Ten good rows with one bad one in the middle (index 6)."""
    rows = [make_row(rec(n), report(1, Success(200), 200), "succeeded") for n in range(10)]
    rows.insert(6, dict(make_row(rec(99), report(1, Success(200), 200), "succeeded"), **poison))
    return rows


def write_batch(engine, callbacks, rows, **kw) -> AttemptLogWriter:
    writer = AttemptLogWriter(engine, callbacks.loop, **kw).start()
    for i, row in enumerate(rows):
        writer.submit(row, callbacks.of(i))
    wait_until(lambda: len(callbacks.done) == len(rows), "every callback")
    writer.stop()
    return writer


def logged_ids(engine) -> set[str]:
    return {d["delivery_id"] for d in list_deliveries_all_tenants(engine, limit=1000)}


def stored(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()


@pytest.mark.parametrize("poison, kind", [
    ({"attempt": 2**63}, "data"),            # bigger than SQLite's INTEGER
    ({"event_id": "ev\udc80"}, "encoding"),  # a lone surrogate: not UTF-8
    ({"status": "lost"}, "integrity"),       # the status check constraint
])
def test_a_row_the_database_refuses_is_set_aside_and_the_rest_of_its_batch_written(engine, callbacks, poison, kind):
    before = m.ATTEMPT_LOG_REJECTED.labels(kind)._value.get()
    writer = write_batch(engine, callbacks, poisoned_batch(poison))
    assert sorted(callbacks.done) == list(range(11))  # the set-aside row is durable too: acknowledged
    assert logged_ids(engine) == {f"msg_{n}" for n in range(10)}
    assert (writer.written, writer.rejected, writer.failures) == (10, 1, 0)
    [rejected] = rejected_rows(engine)
    assert rejected["row"]["delivery_id"] == "msg_99"
    assert {k: rejected["row"][k] for k in poison} == poison  # the row as it was, JSON-escaped
    assert rejected["reason"] and "\n" not in rejected["reason"] and rejected["reason"].isascii()
    assert m.ATTEMPT_LOG_REJECTED.labels(kind)._value.get() == before + 1


def test_an_event_id_of_128_characters_is_stored(engine, callbacks):
    long_id = "e" * 128
    write_batch(engine, callbacks, [dict(make_row(rec(1), report(1, Success(200), 200), "succeeded"), event_id=long_id)])
    assert [a["event_id"] for a in attempts_of(engine, "msg_1", tenant_id="acme")] == [long_id]


@contextlib.contextmanager
def write_lock(engine):
    """Another connection holding SQLite's write lock until the block ends."""
    other = sqlite3.connect(engine.url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_locked_database_is_retried_until_it_is_free_and_nothing_is_lost(engine, callbacks):
    rows = [make_row(rec(n), report(1, Success(200), 200), "succeeded") for n in range(5)]
    # SQLite waits out a lock for max_outage/4 (2 s here) before a try fails
    writer = AttemptLogWriter(engine, callbacks.loop, max_outage=8).start()
    with write_lock(engine):
        for i, row in enumerate(rows):
            writer.submit(row, callbacks.of(i))
        wait_until(lambda: writer.failures >= 1, "a failed try while the database is locked")
        assert callbacks.done == [] and writer.alive
        assert m.ATTEMPT_LOG_OUTAGE._value.get() > 0
    wait_until(lambda: len(callbacks.done) == 5, "every callback after the lock is released")
    writer.stop()
    assert logged_ids(engine) == {f"msg_{n}" for n in range(5)}
    assert writer.error is None and m.ATTEMPT_LOG_OUTAGE._value.get() == 0


def test_an_outage_past_the_bound_stops_the_writer_visibly_and_acknowledges_nothing(engine, callbacks, caplog):
    writer = AttemptLogWriter(engine, callbacks.loop, max_outage=0.5).start()
    with write_lock(engine):
        writer.submit(make_row(rec(1), report(1, Success(200), 200), "succeeded"), callbacks.of(0))
        wait_until(lambda: not writer.alive, "the writer to give up")
    assert isinstance(writer.error, AttemptLogUnavailable)
    assert "HOOKSTREAM_ATTEMPT_LOG_MAX_OUTAGE" in str(writer.error) and "\n" not in str(writer.error)
    # one warning when the outage began; the error itself is reported once, by the writer's owner
    assert [r.levelname for r in caplog.records if "attempt log" in r.message] == ["WARNING"]
    assert callbacks.done == [] and stored(engine, "delivery_attempts") == 0


def test_nul_in_an_excerpt_or_error_never_reaches_the_database():
    row = make_row(rec(1), report(1, RetryLater(RetryReason.SERVER_ERROR, 500), 500, error="bad\x00", excerpt=b"a\x00b"), "failed")
    assert (row["error"], row["response_excerpt"]) == ("bad\ufffd", "a\ufffdb")
