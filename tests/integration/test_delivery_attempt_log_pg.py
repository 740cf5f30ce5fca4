"""The attempt log on PostgreSQL (the driver's paramstyle differs from SQLite's)."""

from __future__ import annotations

import asyncio

import pytest

from delivery.attempt_log import attempts_of, list_deliveries, make_row
from delivery.outcome import Success
from hookstream.db import make_engine, migrate
from tests.unit.test_delivery_attempt_log import _write, rec, report

pytestmark = pytest.mark.postgres


def test_the_writer_works_on_postgresql(postgres_url):
    e = make_engine(postgres_url)
    migrate(e)
    try:
        assert asyncio.run(_write(e, [make_row(rec(1), report(1, Success(200), 200), "succeeded")])) == [0]
        assert [(a["attempt"], a["status"]) for a in attempts_of(e, "msg_1", tenant_id="acme")] == [(1, "succeeded")]
        assert [d["delivery_id"] for d in list_deliveries(e, tenant_id="acme", status="succeeded")] == ["msg_1"]
    finally:
        e.dispose()
