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


def test_an_excerpt_with_nul_bytes_is_stored(postgres_url):
    """PostgreSQL text refuses NUL; an endpoint's body (a gzip answer we do not decode) may hold
    them, and that must not stop the attempt-log writer."""
    e = make_engine(postgres_url)
    migrate(e)
    try:
        body = b"\x1f\x8b\x08\x00garbage\x00\xff"
        row = make_row(rec(2), report(1, Success(200), 200, excerpt=body), "succeeded")
        assert asyncio.run(_write(e, [row])) == [0]
        (attempt,) = attempts_of(e, "msg_2")
        assert attempt["response_excerpt"] == "\x1f\ufffd\x08\ufffdgarbage\ufffd\ufffd"  # NUL and bad UTF-8 alike
    finally:
        e.dispose()
