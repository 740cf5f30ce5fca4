"""hookstream.delivery.messages on PostgreSQL as the application role (row-level security on):
each query is bound to its tenant, so another tenant's messages stay invisible, and the
percentile and grouping SQL runs there as on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hookstream.core.db import bind_all_tenants, make_engine, migrate
from hookstream.core.errors import NotFoundError
from hookstream.delivery.attempt_log import AttemptRow
from hookstream.delivery.messages import endpoint_stats, get_message, list_attempts, list_messages
from tests.postgres import as_application_role

pytestmark = pytest.mark.postgres

NOW = 1_800_000_000.0


@pytest.fixture
def engine(postgres_url):
    e = make_engine(as_application_role(postgres_url), pool_size=1, max_overflow=0)
    migrate(e)
    rows = [
        ("msg_a", "acme", "sub_a", 1, "failed", 500, 30.0, NOW),
        ("msg_a", "acme", "sub_a", 2, "succeeded", 200, 10.0, NOW + 1),
        ("msg_b", "acme", "sub_a", 1, "dead", 400, 20.0, NOW + 2),
        ("msg_g", "globex", "sub_g", 1, "succeeded", 200, 5.0, NOW + 3),
    ]
    with e.begin() as conn:
        bind_all_tenants(conn)
        for delivery, tenant, sub, n, status, code, ms, at in rows:
            conn.execute(AttemptRow.__table__.insert().values(
                delivery_id=delivery, event_id=f"ev-{delivery}", event_type="invoice.sent", tenant_id=tenant,
                subscription_id=sub, attempt=n, status=status, http_status=code, duration_ms=ms, error=None,
                response_excerpt=None, attempted_at=datetime.fromtimestamp(at, UTC)))
    yield e
    e.dispose()


def test_messages_are_scoped_to_their_tenant(engine):
    assert [m.id for m in list_messages(engine, tenant_id="acme")] == ["msg_b", "msg_a"]
    assert [m.id for m in list_messages(engine, tenant_id="acme", status="failed")] == ["msg_b"]
    assert [m.id for m in list_messages(engine, tenant_id="globex")] == ["msg_g"]
    assert list_messages(engine, tenant_id="acme", endpoint_id="sub_g") == []
    with pytest.raises(NotFoundError):
        get_message(engine, "msg_g", tenant_id="acme")
    with pytest.raises(NotFoundError):
        list_attempts(engine, "msg_g", tenant_id="acme")
    a = get_message(engine, "msg_a", tenant_id="acme")
    assert (a.attempts, a.status, a.first_attempt_at < a.last_attempt_at) == (2, "succeeded", True)


def test_stats_on_postgresql(engine):
    stats = endpoint_stats(engine, "sub_a", tenant_id="acme", now=NOW + 10)
    assert (stats["hour"]["attempts"], stats["hour"]["succeeded"], stats["hour"]["failed"], stats["hour"]["dead"]) == (3, 1, 1, 1)
    assert stats["hour"]["latency_ms"]["p50"] == 20.0 and stats["hour"]["latency_ms"]["avg"] == 20.0
    assert endpoint_stats(engine, "sub_g", tenant_id="acme", now=NOW + 10)["day"]["attempts"] == 0


async def test_ids_postgresql_cannot_hold_are_404_or_422_through_the_api(engine, postgres_url, tmp_path):
    import httpx

    from hookstream.core.settings import Settings
    from hookstream.shell.api.app import create_app
    from hookstream.shell.api.keys import ApiKeyStore

    settings = Settings(database_url=as_application_role(postgres_url), state_dir=tmp_path)
    keys = ApiKeyStore(engine)
    key = keys.create(tenant_id="acme")[1]
    app = create_app(settings, engine=engine, key_store=keys)
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://api") as http:
        for path in ("/v1/endpoints/sub%00x", "/v1/endpoints/sub%00x/stats", "/v1/messages/msg%00", "/v1/messages/msg%00/attempts"):
            r = await http.get(path, headers=auth)
            assert r.status_code == 404, (path, r.text)
        r = await http.get("/v1/messages", params={"endpoint_id": "sub\x00"}, headers=auth)
        assert r.status_code == 422 and r.json()["field"] == "endpoint_id", r.text
        r = await http.get("/v1/messages", params={"endpoint_id": "sub_a"}, headers=auth)
        assert [m["id"] for m in r.json()["data"]] == ["msg_b", "msg_a"]
