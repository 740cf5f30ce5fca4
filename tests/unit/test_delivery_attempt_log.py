"""delivery.attempt_log: batched writes off the event loop, callbacks once committed, queries."""

from __future__ import annotations

import asyncio

import pytest

from delivery.attempt import AttemptReport
from delivery.attempt_log import (
    AttemptLogWriter, attempts_of, attempts_of_any_tenant, list_deliveries, list_deliveries_all_tenants, make_row,
)
from delivery.outcome import GiveUp, GiveUpReason, RetryLater, RetryReason, Success
from hookstream.db import make_engine, migrate
from hookstream.errors import ValidationError
from hookstream.records import DeliveryRecord


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



def test_nul_in_an_excerpt_or_error_never_reaches_the_database():
    row = make_row(rec(1), report(1, RetryLater(RetryReason.SERVER_ERROR, 500), 500, error="bad\x00", excerpt=b"a\x00b"), "failed")
    assert (row["error"], row["response_excerpt"]) == ("bad\ufffd", "a\ufffdb")
