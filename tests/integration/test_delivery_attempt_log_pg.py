"""The attempt log on PostgreSQL (the driver's paramstyle differs from SQLite's), and on both
databases what each refuses: long ids, NUL bytes, numbers out of range, an outage."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from hookstream.delivery.attempt_log import AttemptLogUnavailable, AttemptLogWriter, attempts_of, list_deliveries, make_row, rejected_rows
from hookstream.delivery.outcome import Success
from hookstream.core.db import make_engine, migrate
from tests.unit.test_delivery_attempt_log import (  # noqa: F401  (callbacks is a fixture)
    _write, callbacks, logged_ids, poisoned_batch, rec, report, stored, wait_until, write_batch,
)


@pytest.fixture
def engine(database_url):
    e = make_engine(database_url)
    migrate(e)
    yield e
    e.dispose()


@pytest.fixture
def pg_engine(postgres_url):
    e = make_engine(postgres_url)
    migrate(e)
    yield e
    e.dispose()


@contextlib.contextmanager
def outage(server):
    """The PostgreSQL server stopped until the block ends (then started again on its data)."""
    server.halt()
    try:
        yield
    finally:
        server.resume()


def ok_row(n: int) -> dict:
    return make_row(rec(n), report(1, Success(200), 200), "succeeded")


@pytest.mark.postgres
def test_the_writer_works_on_postgresql(pg_engine):
    e = pg_engine
    assert asyncio.run(_write(e, [ok_row(1)])) == [0]
    assert [(a["attempt"], a["status"]) for a in attempts_of(e, "msg_1", tenant_id="acme")] == [(1, "succeeded")]
    assert [d["delivery_id"] for d in list_deliveries(e, tenant_id="acme", status="succeeded")] == ["msg_1"]


@pytest.mark.postgres
def test_an_excerpt_with_nul_bytes_is_stored(pg_engine):
    """PostgreSQL text refuses NUL; an endpoint's body (a gzip answer we do not decode) may hold
    them, and that must not stop the attempt-log writer."""
    body = b"\x1f\x8b\x08\x00garbage\x00\xff"
    row = make_row(rec(2), report(1, Success(200), 200, excerpt=body), "succeeded")
    assert asyncio.run(_write(pg_engine, [row])) == [0]
    (attempt,) = attempts_of(pg_engine, "msg_2", tenant_id="acme")
    assert attempt["response_excerpt"] == "\x1f\ufffd\x08\ufffdgarbage\ufffd\ufffd"  # NUL and bad UTF-8 alike


def test_an_event_id_of_128_characters_is_stored(engine, callbacks):
    long_id = "0" * 120 + "-abcdefg"
    write_batch(engine, callbacks, [dict(ok_row(1), event_id=long_id)])
    assert [a["event_id"] for a in attempts_of(engine, "msg_1", tenant_id="acme")] == [long_id]


def test_a_number_out_of_range_is_set_aside_on_both_databases(engine, callbacks):
    writer = write_batch(engine, callbacks, poisoned_batch({"attempt": 2**63}))
    assert sorted(callbacks.done) == list(range(11))
    assert logged_ids(engine) == {f"msg_{n}" for n in range(10)}
    assert (writer.written, writer.rejected) == (10, 1)
    assert [r["row"]["attempt"] for r in rejected_rows(engine)] == [2**63]


@pytest.mark.postgres
@pytest.mark.parametrize("poison", [
    {"event_id": "ev\x00nul"},                 # PostgreSQL text never holds NUL
    {"response_excerpt": "binary\x00body"},   # (make_row replaces NUL; a row built elsewhere may not)
    {"subscription_id": "sub_" + "x" * 61},   # 65 > 64 characters
    {"tenant_id": "t" * 129},                 # 129 > 128 (the schema's bound)
    {"error": "bad \udc80 encoding"},          # a lone surrogate is not UTF-8
])
def test_what_postgresql_refuses_is_set_aside_and_the_rest_written(pg_engine, callbacks, poison):
    writer = write_batch(pg_engine, callbacks, poisoned_batch(poison))
    assert sorted(callbacks.done) == list(range(11))
    assert logged_ids(pg_engine) == {f"msg_{n}" for n in range(10)}
    assert (writer.written, writer.rejected) == (10, 1)
    [rejected] = rejected_rows(pg_engine)
    assert {k: rejected["row"][k] for k in poison} == poison
    assert rejected["reason"].isascii() and "\n" not in rejected["reason"]


@pytest.mark.postgres
def test_a_postgresql_restart_is_retried_and_nothing_is_lost(postgres_server, pg_engine, callbacks):
    write_batch(pg_engine, callbacks, [ok_row(0)])  # the pool holds a connection the restart breaks
    callbacks.done.clear()
    writer = AttemptLogWriter(pg_engine, callbacks.loop, max_outage=120).start()
    with outage(postgres_server):
        for n in range(1, 6):
            writer.submit(ok_row(n), callbacks.of(n))
        wait_until(lambda: writer.failures >= 1, "a failed try while PostgreSQL is down")
        assert callbacks.done == [] and writer.alive
    wait_until(lambda: len(callbacks.done) == 5, "every callback after the restart", timeout=60)
    writer.stop()
    assert logged_ids(pg_engine) == {f"msg_{n}" for n in range(6)}
    assert writer.error is None and writer.rejected == 0


@pytest.mark.postgres
def test_a_postgresql_outage_past_the_bound_stops_the_writer_visibly(postgres_server, pg_engine, callbacks):
    writer = AttemptLogWriter(pg_engine, callbacks.loop, max_outage=1.0).start()
    with outage(postgres_server):
        writer.submit(ok_row(1), callbacks.of(1))
        wait_until(lambda: not writer.alive, "the writer to give up")
    assert isinstance(writer.error, AttemptLogUnavailable) and "HOOKSTREAM_ATTEMPT_LOG_MAX_OUTAGE" in str(writer.error)
    assert callbacks.done == [] and stored(pg_engine, "delivery_attempts") == 0


@pytest.mark.postgres
def test_an_error_retrying_cannot_mend_stops_the_writer_at_once(pg_engine, callbacks):
    writer = AttemptLogWriter(pg_engine, callbacks.loop, max_outage=120)
    writer._sql = writer._insert_sql().replace("delivery_attempts", "no_such_table")  # a schema migrations did not make
    writer.start()
    writer.submit(ok_row(1), callbacks.of(1))
    wait_until(lambda: not writer.alive, "the writer to stop")
    assert isinstance(writer.error, AttemptLogUnavailable) and writer.failures == 0
    assert "no_such_table" in str(writer.error) and callbacks.done == []
