"""Row-level security on PostgreSQL: tenant isolation that holds even when a query forgets its filter.

Superusers bypass row-level security, and the test server's ``postgres`` user is one: these tests
create an ordinary role that owns the test database, run the migrations as it (so it owns the
tables, as the application does when it migrates on start) and connect as it.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from hookstream.delivery.attempt_log import attempts_of, attempts_of_any_tenant, list_deliveries, list_deliveries_all_tenants, make_row
from hookstream.delivery.outcome import Success
from hookstream.core.db import bind_all_tenants, bind_tenant, make_engine, migrate
from hookstream.core.settings import Settings
from hookstream.subscriptions.store import SubscriptionStore
from tests.postgres import as_application_role
from tests.unit.test_delivery_attempt_log import _write, rec, report

pytestmark = pytest.mark.postgres

PUBLIC = "93.184.215.14"


@pytest.fixture
def app_url(postgres_url) -> str:
    """The test database, owned by a fresh non-superuser role; a URL connecting as that role."""
    return as_application_role(postgres_url)


@pytest.fixture
def engine(app_url):
    # one pooled connection: every transaction reuses it, so a binding that leaked would show
    e = make_engine(app_url, pool_size=1, max_overflow=0)
    migrate(e)
    yield e
    e.dispose()


@pytest.fixture
def store(engine, app_url, tmp_path) -> SubscriptionStore:
    return SubscriptionStore(Settings(database_url=app_url, state_dir=tmp_path), engine, resolver=lambda host, port: [PUBLIC])


@pytest.fixture
def subs(store) -> dict:
    a1, _ = store.add("acme", "https://a.example/1", ["*"])
    a2, _ = store.add("acme", "https://a.example/2", ["*"])
    g1, _ = store.add("globex", "https://g.example/1", ["*"])
    return {"a1": a1, "a2": a2, "g1": g1}


def ids(conn, sql: str = "SELECT id FROM subscriptions") -> set[str]:
    return set(conn.execute(text(sql)).scalars())


def test_raw_sql_bound_to_one_tenant_reads_and_changes_only_its_rows(engine, store, subs):
    with engine.begin() as conn:
        bind_tenant(conn, "acme")
        # a query without any tenant filter, as a bug would write it
        assert ids(conn) == {subs["a1"].id, subs["a2"].id}
        assert conn.execute(text("UPDATE subscriptions SET description = 'mine'")).rowcount == 2
        assert conn.execute(text("UPDATE subscriptions SET description = 'x' WHERE id = :id"), {"id": subs["g1"].id}).rowcount == 0
        assert conn.execute(text("DELETE FROM subscriptions WHERE tenant_id = 'globex'")).rowcount == 0
    assert store.get_any_tenant(subs["g1"].id) == subs["g1"]
    assert store.get(subs["a1"].id, tenant_id="acme").description == "mine"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE subscriptions SET tenant_id = 'globex' WHERE id = :id",  # hand a row to another tenant
        "INSERT INTO subscriptions (id, tenant_id, url, events, status, headers, secrets, created_at, updated_at, version)"
        " VALUES ('sub_forged', 'globex', 'https://x.example/', '[]', 'active', '{}', '[]', now(), now(), 1)",
    ],
)
def test_raw_sql_bound_to_one_tenant_cannot_write_another_tenants_row(engine, store, subs, statement):
    with pytest.raises(DBAPIError, match="violates row-level security policy"):
        with engine.begin() as conn:
            bind_tenant(conn, "acme")
            conn.execute(text(statement), {"id": subs["a1"].id})
    assert {s.id: s.tenant_id for s in store.list_all_tenants()} == {s.id: s.tenant_id for s in subs.values()}


def test_an_unbound_transaction_sees_nothing_and_a_binding_ends_with_its_transaction(engine, subs):
    with engine.begin() as conn:
        bind_tenant(conn, "globex")
        assert ids(conn) == {subs["g1"].id}
    with engine.begin() as conn:  # the same pooled connection, a new transaction
        assert ids(conn) == set()
        assert conn.execute(text("UPDATE subscriptions SET description = 'x'")).rowcount == 0
    with engine.begin() as conn:
        bind_all_tenants(conn)
        assert ids(conn) == {s.id for s in subs.values()}
    with engine.connect() as conn:
        assert ids(conn) == set()


def test_rls_is_forced_on_the_owning_role_and_superusers_bypass_it(engine, app_url, postgres_url, subs):
    role = make_url(app_url).username
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT relname, relrowsecurity, relforcerowsecurity, pg_get_userbyid(relowner) FROM pg_class"
            " WHERE relname IN ('subscriptions', 'delivery_attempts') ORDER BY relname"
        )).all()
    assert [tuple(r) for r in rows] == [("delivery_attempts", True, True, role), ("subscriptions", True, True, role)]
    # why the application must not connect as a superuser: the policies do not apply to it
    superuser = make_engine(postgres_url)
    try:
        with superuser.connect() as conn:
            assert ids(conn) == {s.id for s in subs.values()}
    finally:
        superuser.dispose()


def test_the_store_works_as_the_application_role(store, subs):
    assert [s.id for s in store.list(tenant_id="acme")] == [subs["a1"].id, subs["a2"].id]
    assert {s.id for s in store.list_all_tenants()} == {s.id for s in subs.values()}
    assert store.disable(subs["g1"].id, tenant_id="globex").status == "disabled"
    assert store.unpublished_count() == 3


def test_the_attempt_log_as_the_application_role(app_url, engine):
    worker_engine = make_engine(app_url, all_tenants=True)  # as the delivery worker makes it
    try:
        rows = [make_row(rec(1, tenant="acme"), report(1, Success(200), 200), "succeeded"),
                make_row(rec(2, tenant="globex", sub="sub_2"), report(1, Success(200), 200), "succeeded")]
        assert sorted(asyncio.run(_write(worker_engine, rows))) == [0, 1]
    finally:
        worker_engine.dispose()
    assert [d["delivery_id"] for d in list_deliveries(engine, tenant_id="acme")] == ["msg_1"]
    assert attempts_of(engine, "msg_2", tenant_id="acme") == []
    assert [a["tenant_id"] for a in attempts_of_any_tenant(engine, "msg_2")] == ["globex"]
    assert {d["delivery_id"] for d in list_deliveries_all_tenants(engine)} == {"msg_1", "msg_2"}
    with engine.connect() as conn:  # a forgotten filter, bound to acme
        bind_tenant(conn, "acme")
        assert set(conn.execute(text("SELECT tenant_id FROM delivery_attempts")).scalars()) == {"acme"}


def test_the_compose_init_script_makes_an_owner_role_that_rls_applies_to(postgres_server, postgres_url):
    """ops/postgres/initdb/10-app-role.sh, run as the postgres image runs it, against this server."""
    import os
    import subprocess
    from pathlib import Path

    url = make_url(postgres_url)
    role = f"hs_{uuid.uuid4().hex[:10]}"
    script = Path(__file__).resolve().parents[2] / "ops/postgres/initdb/10-app-role.sh"
    env = {
        "PATH": f"{postgres_server.bin}:{os.environ['PATH']}", "PGHOST": url.host, "PGPORT": str(url.port),
        "POSTGRES_USER": "postgres", "POSTGRES_DB": url.database,
        "HOOKSTREAM_DB_USER": role, "HOOKSTREAM_DB_PASSWORD": "it's secret",
    }
    done = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    e = make_engine(url.set(username=role).render_as_string(hide_password=False))
    try:
        migrate(e)  # as the owner, like the application on start
        with e.begin() as conn:
            assert conn.execute(text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")).scalar() is False
            bind_tenant(conn, "acme")
            conn.execute(text(
                "INSERT INTO subscriptions (id, tenant_id, url, events, status, headers, secrets, created_at, updated_at, version)"
                " VALUES ('sub_1', 'acme', 'https://a.example/', '[]', 'active', '{}', '[]', now(), now(), 1)"
            ))
        with e.connect() as conn:
            assert ids(conn) == set()  # unbound: the policy applies to this role
    finally:
        e.dispose()


def test_open_database_binds_all_tenants_only_when_asked(app_url, subs, tmp_path):
    """``open_database(settings, all_tenants=True)`` (the delivery worker's attempt log) sees every
    tenant's rows without binding; the default engine sees none until a transaction binds one."""
    from hookstream.core.db import open_database

    settings = Settings(database_url=app_url, state_dir=tmp_path)
    everyone, plain = open_database(settings, all_tenants=True), open_database(settings)
    try:
        with everyone.begin() as conn:
            assert ids(conn) == {s.id for s in subs.values()}
        with plain.begin() as conn:
            assert ids(conn) == set()
            bind_tenant(conn, "globex")
            assert ids(conn) == {subs["g1"].id}
    finally:
        everyone.dispose()
        plain.dispose()
