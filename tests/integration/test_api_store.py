"""The API's stores (keys, idempotency) on SQLite and PostgreSQL, migrated like the app does."""

from __future__ import annotations

import pytest

from hookstream.core.db import make_engine, migrate
from hookstream.shell.api.idempotency import IdempotencyStore, Request
from hookstream.shell.api.keys import ApiKeyStore


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


def test_keys_are_made_checked_listed_and_revoked(engine):
    keys = ApiKeyStore(engine)
    tenant_key, plain = keys.create(tenant_id="acme", name="ci")
    admin_key, admin_plain = keys.create(admin=True)
    assert keys.authenticate(plain).tenant_id == "acme"
    assert keys.authenticate(admin_plain).admin
    assert {k.id for k in keys.list()} == {tenant_key.id, admin_key.id}
    assert [k.id for k in keys.list(tenant_id="acme")] == [tenant_key.id]
    keys.revoke(tenant_key.id)
    assert keys.authenticate(plain) is None
    assert [k.id for k in keys.list(include_revoked=False)] == [admin_key.id]


def test_the_table_refuses_a_key_with_both_scopes_or_none(engine):
    import sqlalchemy as sa
    from sqlalchemy.exc import IntegrityError

    from hookstream.shell.api.keys import api_keys

    for tenant, admin in (("acme", True), (None, False)):
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(api_keys.insert().values(id=f"key_{admin:d}", prefix="hsk_x", key_hash="0" * 64, tenant_id=tenant,
                                                  admin=admin, name="", created_at=sa.func.now()))


def test_idempotency_claims_are_per_tenant_and_replayed(engine):
    store = IdempotencyStore(engine)
    request = Request("key:k1", "f", "e1", "2026-11-29T12:00:00.000000Z")
    assert [c.kind for c in store.claim("acme", [request])] == ["new"]
    assert [c.kind for c in store.claim("globex", [request])] == ["new"]
    store.finish("acme", {"key:k1": {"id": "e1"}})
    [replay] = store.claim("acme", [request])
    assert (replay.kind, replay.response) == ("replay", {"id": "e1"})
    assert store.claim("globex", [request])[0].kind == "in_flight"
