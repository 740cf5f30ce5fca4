"""Idempotent ingest: what an ``Idempotency-Key`` (or a client's event id) was answered with.

Before an event is published its key is *claimed*: a row (tenant, key) holding a hash of the
request, the event's id and ``occurred_at``, state ``pending``. Once the broker acknowledged the
event the row is ``done`` with the answer; if publishing failed it is ``failed``. A later request
with the same key, for at least ``TTL`` (24 h, in the database, so across restarts):

- same request, ``done``: the same answer again (``replay``: nothing is published);
- same request, ``failed``, or ``pending`` for longer than ``PENDING_TIMEOUT`` (its process died
  mid-publish): it takes the claim over and publishes *the same event* (same id and
  ``occurred_at``) again, so a retry after a failure never makes a second event;
- same request, ``pending`` and recent: ``in_flight`` (409: another request is publishing it);
- another request under the same key: ``mismatch`` (409, like a request still in flight: the
  IETF Idempotency-Key draft suggests 422, but a conflict over the key is what it is).

Rows older than ``TTL`` no longer count and are deleted by ``prune``. Each transaction is bound to
its tenant (row-level security on PostgreSQL), and every query names the tenant anyway.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from hookstream.core.db import Base, bind_all_tenants, bind_tenant

TTL = timedelta(hours=24)
PENDING_TIMEOUT = timedelta(minutes=2)  # longer than a publish may take (30 s) with margin
_CHUNK = 400  # keys per IN (...) query (SQLite allows 999 parameters per statement in old builds)

api_idempotency = sa.Table(
    "api_idempotency",
    Base.metadata,
    sa.Column("tenant_id", sa.String(128), primary_key=True),
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("event_id", sa.String(128), nullable=False),
    sa.Column("occurred_at", sa.String(40), nullable=False),
    sa.Column("response", sa.JSON, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
)


_FINISH = (api_idempotency.update()
           .where(api_idempotency.c.tenant_id == sa.bindparam("b_tenant"), api_idempotency.c.key == sa.bindparam("b_key"))
           .values(state="done", response=sa.bindparam("b_response", type_=api_idempotency.c.response.type)))


@dataclasses.dataclass(frozen=True)
class Request:
    """One event to claim a key for: the key, the request's hash, the event it would publish."""

    key: str
    fingerprint: str
    event_id: str
    occurred_at: str


@dataclasses.dataclass(frozen=True)
class Claim:
    """What to do with a request: ``new`` (publish ``event_id``/``occurred_at``: a takeover keeps
    the first ones), ``replay`` (answer ``response``), ``in_flight`` or ``mismatch`` (refuse)."""

    kind: str
    event_id: str = ""
    occurred_at: str = ""
    response: dict[str, Any] | None = None


class IdempotencyStore:
    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self._now = clock or (lambda: datetime.now(timezone.utc))

    def claim(self, tenant_id: str, requests: Sequence[Request]) -> list[Claim]:
        """Claim every request's key (one transaction); one ``Claim`` per request, in order.
        Two requests of one call must not share a key (the caller sees to it)."""
        if not requests:
            return []
        for attempt in range(2):
            try:
                return self._claim(tenant_id, requests)
            except IntegrityError:  # another request inserted one of the keys meanwhile: read it now
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def _claim(self, tenant_id: str, requests: Sequence[Request]) -> list[Claim]:
        now = self._now()
        t = api_idempotency.c
        with self.engine.begin() as conn:
            bind_tenant(conn, tenant_id)
            rows: dict[str, Any] = {}
            keys = [r.key for r in requests]
            for i in range(0, len(keys), _CHUNK):
                query = sa.select(api_idempotency).where(t.tenant_id == tenant_id, t.key.in_(keys[i:i + _CHUNK]))
                rows.update({row.key: row for row in conn.execute(query)})
            claims, inserts = [], []
            for req in requests:
                row = rows.get(req.key)
                if row is not None and _aware(row.created_at) <= now - TTL:  # forgotten: as if new
                    conn.execute(api_idempotency.delete().where(t.tenant_id == tenant_id, t.key == req.key))
                    row = None
                if row is None:
                    inserts.append({"tenant_id": tenant_id, "key": req.key, "fingerprint": req.fingerprint, "state": "pending",
                                    "event_id": req.event_id, "occurred_at": req.occurred_at, "response": None, "created_at": now})
                    claims.append(Claim("new", req.event_id, req.occurred_at))
                elif row.fingerprint != req.fingerprint:
                    claims.append(Claim("mismatch"))
                elif row.state == "done":
                    claims.append(Claim("replay", row.event_id, row.occurred_at, row.response))
                elif row.state == "pending" and _aware(row.created_at) > now - PENDING_TIMEOUT:
                    claims.append(Claim("in_flight", row.event_id, row.occurred_at))
                else:  # failed, or pending in a process that is gone: publish the same event again
                    conn.execute(api_idempotency.update().where(t.tenant_id == tenant_id, t.key == req.key)
                                 .values(state="pending", created_at=now))
                    claims.append(Claim("new", row.event_id, row.occurred_at))
            if inserts:
                conn.execute(api_idempotency.insert(), inserts)
        return claims

    def finish(self, tenant_id: str, done: dict[str, dict[str, Any]], failed: Sequence[str] = ()) -> None:
        """Record the outcome of claimed keys: ``done`` maps key -> answer; ``failed`` keys may be retried."""
        if not done and not failed:
            return
        t = api_idempotency.c
        with self.engine.begin() as conn:
            bind_tenant(conn, tenant_id)
            if done:  # one statement for them all (executemany): a batch's 1,000 keys in one go
                conn.execute(_FINISH, [{"b_tenant": tenant_id, "b_key": key, "b_response": response} for key, response in done.items()])
            failed = list(failed)
            for i in range(0, len(failed), _CHUNK):
                conn.execute(api_idempotency.update().where(t.tenant_id == tenant_id, t.key.in_(failed[i:i + _CHUNK]))
                             .values(state="failed"))

    def prune(self) -> int:
        """Delete the rows older than ``TTL`` (every tenant's); returns how many."""
        with self.engine.begin() as conn:
            bind_all_tenants(conn)
            return conn.execute(api_idempotency.delete().where(api_idempotency.c.created_at <= self._now() - TTL)).rowcount


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)  # SQLite gives naive back
