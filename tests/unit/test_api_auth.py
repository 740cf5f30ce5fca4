"""The API's keys, callers, tenancy and rate limit, in-process (httpx.ASGITransport)."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends

from hookstream.core.errors import NotFoundError, ValidationError
from hookstream.shell.api.auth import Caller, admin_only, caller, tenant_of
from hookstream.shell.api.keys import REVOCATION_SECONDS, ApiKeyStore, KeyCache, hash_key
from hookstream.shell.api.ratelimit import RateLimiter
from tests.unit.api_helpers import Api, assert_problem


def _probe_routes(api: Api) -> None:
    router = APIRouter()

    @router.get("/v1/probe/tenant")
    async def tenant(t: Annotated[str, Depends(tenant_of)]) -> dict:
        return {"tenant": t}

    @router.get("/v1/probe/caller")
    async def who(c: Annotated[Caller, Depends(caller)]) -> dict:
        return {"key_id": c.key_id, "tenant_id": c.tenant_id, "admin": c.admin}

    @router.get("/v1/probe/admin")
    async def admin(c: Annotated[Caller, Depends(admin_only)]) -> dict:
        return {"admin": c.admin}

    api.app.include_router(router)


@pytest.fixture
def api(tmp_path) -> Api:
    api = Api(tmp_path)
    _probe_routes(api)
    return api


# ----------------------------------------------------------------------------- the key store
def test_a_key_is_hsk_and_32_random_bytes_and_only_its_hash_is_stored(tmp_path):
    api = Api(tmp_path)
    key, plain = api.keys.create(tenant_id="acme", name="ci")
    assert plain.startswith("hsk_") and len(plain) == 4 + 43
    assert key.prefix == plain[:12] and key.tenant_id == "acme" and not key.admin
    with api.engine.connect() as conn:
        stored = [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM api_keys")]
    assert not any(plain in str(value) for row in stored for value in row)
    assert any(hash_key(plain) in row for row in stored)
    assert api.keys.authenticate(plain).id == key.id


def test_authenticate_refuses_malformed_unknown_and_revoked_keys(tmp_path):
    api = Api(tmp_path)
    key, plain = api.keys.create(tenant_id="acme")
    assert api.keys.authenticate("hsk_short") is None
    assert api.keys.authenticate(plain[:-1] + ("A" if plain[-1] != "A" else "B")) is None  # same prefix, other key
    api.keys.revoke(key.id)
    assert api.keys.authenticate(plain) is None
    assert api.keys.revoke(key.id).revoked  # again: no change, no error
    assert [k.id for k in api.keys.list() if k.revoked] == [key.id]


@pytest.mark.parametrize("kw", [{}, {"tenant_id": "acme", "admin": True}, {"tenant_id": "a b"}, {"tenant_id": "acme", "name": "x\ny"}])
def test_create_refuses_a_key_without_one_scope_or_with_bad_input(tmp_path, kw):
    with pytest.raises(ValidationError):
        Api(tmp_path).keys.create(**kw)


def test_revoking_an_unknown_key_is_not_found(tmp_path):
    with pytest.raises(NotFoundError):
        Api(tmp_path).keys.revoke("key_0000000000000000")
    with pytest.raises(NotFoundError):
        Api(tmp_path).keys.revoke("not an id")


# ----------------------------------------------------------------------------- callers
@pytest.mark.parametrize("headers, detail", [
    ({}, "no API key"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "not 'Bearer"),
    ({"Authorization": "Bearer"}, "not 'Bearer"),
    ({"Authorization": "Bearer hsk_nope"}, "malformed"),
    ({"Authorization": "Bearer hsk_" + "A" * 43}, "unknown or revoked"),
])
async def test_no_or_a_bad_key_is_401_with_a_bearer_challenge(api, headers, detail):
    async with api.client() as client:
        response = await client.get("/v1/probe/caller", headers=headers)
    doc = assert_problem(response, 401, "unauthorized")
    assert detail in doc["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_revoked_key_is_refused_once_its_cached_check_expires_within_a_second(api):
    now = [100.0]
    key_id = api.keys.authenticate(api.acme).id
    ctx = api.app.state.ctx
    ctx.key_cache = KeyCache(clock=lambda: now[0])  # the default bound, on a clock the test moves
    async with api.client() as client:
        assert (await client.get("/v1/probe/caller", headers=api.auth(api.acme))).status_code == 200
        api.keys.revoke(key_id)
        now[0] += 0.5  # still the cached check: what a busy key costs is one read a second
        assert (await client.get("/v1/probe/caller", headers=api.auth(api.acme))).status_code == 200
        now[0] += REVOCATION_SECONDS  # past the bound docs/api.md states
        assert_problem(await client.get("/v1/probe/caller", headers=api.auth(api.acme)), 401, "unauthorized")
    assert REVOCATION_SECONDS <= 1.0


async def test_a_tenant_key_acts_for_its_tenant_only(api):
    async with api.client() as client:
        assert (await client.get("/v1/probe/tenant", headers=api.auth(api.acme))).json() == {"tenant": "acme"}
        same = await client.get("/v1/probe/tenant", headers=api.auth(api.acme, **{"Hookstream-Tenant": "acme"}))
        assert same.json() == {"tenant": "acme"}
        other = await client.get("/v1/probe/tenant", headers=api.auth(api.acme, **{"Hookstream-Tenant": "globex"}))
        assert_problem(other, 403, "tenant_mismatch", "Hookstream-Tenant")


async def test_an_admin_key_names_its_tenant_in_the_header(api):
    async with api.client() as client:
        assert_problem(await client.get("/v1/probe/tenant", headers=api.auth(api.admin)), 400, "tenant_required", "Hookstream-Tenant")
        named = await client.get("/v1/probe/tenant", headers=api.auth(api.admin, **{"Hookstream-Tenant": "globex"}))
        assert named.json() == {"tenant": "globex"}
        bad = await client.get("/v1/probe/tenant", headers=api.auth(api.admin, **{"Hookstream-Tenant": "no spaces"}))
        assert_problem(bad, 400, "invalid_tenant", "Hookstream-Tenant")


async def test_admin_routes_are_403_for_tenant_keys(api):
    async with api.client() as client:
        assert_problem(await client.get("/v1/probe/admin", headers=api.auth(api.acme)), 403, "admin_only")
        assert (await client.get("/v1/probe/admin", headers=api.auth(api.admin))).json() == {"admin": True}


# ----------------------------------------------------------------------------- rate limit
def test_the_token_bucket_allows_a_burst_then_the_rate():
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.take("k") for _ in range(3)] == [None, None, None]
    assert limiter.take("k") == pytest.approx(0.5)
    assert limiter.take("other") is None  # per key
    now[0] += 0.5
    assert limiter.take("k") is None
    assert limiter.take("k") is not None
    assert RateLimiter(rate=0).take("k") is None  # off


async def test_over_the_rate_limit_is_429_with_retry_after(tmp_path):
    api = Api(tmp_path, limiter=RateLimiter(rate=1.0, burst=2, clock=lambda: 0.0))
    _probe_routes(api)
    async with api.client() as client:
        statuses = [(await client.get("/v1/probe/caller", headers=api.auth(api.acme))).status_code for _ in range(2)]
        refused = await client.get("/v1/probe/caller", headers=api.auth(api.acme))
        other_key = await client.get("/v1/probe/caller", headers=api.auth(api.globex))
    assert statuses == [200, 200]
    assert_problem(refused, 429, "rate_limited")
    assert refused.headers["retry-after"] == "1"
    assert other_key.status_code == 200


# ----------------------------------------------------------------------------- failed authentications
def _client_from(api: Api, address: str):
    import httpx

    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://api.test")


async def test_failed_authentications_from_one_address_get_429_without_locking_out_valid_keys(tmp_path):
    api = Api(tmp_path, settings_kw={"api_auth_failure_limit": 3})
    _probe_routes(api)
    ctx = api.app.state.ctx
    ctx.auth_failures._clock = lambda: 0.0  # the buckets do not refill during the test
    unknown = {"Authorization": "Bearer hsk_" + "B" * 43}
    async with _client_from(api, "10.0.0.1") as attacker, _client_from(api, "10.0.0.2") as other:
        assert (await attacker.get("/v1/probe/caller", headers=api.auth(api.acme))).status_code == 200  # known good, cached
        kinds = [unknown, {"Authorization": "Bearer short"}, {}]  # unknown, malformed, none: each a failure
        assert [(await attacker.get("/v1/probe/caller", headers=h)).status_code for h in kinds] == [401, 401, 401]
        refused = await attacker.get("/v1/probe/caller", headers=unknown)
        assert_problem(refused, 429, "too_many_auth_failures")
        assert int(refused.headers["retry-after"]) >= 1
        assert_problem(await attacker.post("/v1/events", json={}), 429, "too_many_auth_failures")  # the ingest routes too, with no key at all
        # the address's failures never refuse a valid key: not its own cached one, not another address's
        assert (await attacker.get("/v1/probe/caller", headers=api.auth(api.acme))).status_code == 200
        assert (await other.get("/v1/probe/caller", headers=api.auth(api.globex))).status_code == 200
        assert_problem(await other.get("/v1/probe/caller", headers=unknown), 401, "unauthorized")  # its own count
    lookups = []
    ctx.key_store.authenticate = lambda plain: lookups.append(plain)  # type: ignore[method-assign]
    async with _client_from(api, "10.0.0.1") as attacker:
        assert_problem(await attacker.get("/v1/probe/caller", headers={"Authorization": "Bearer hsk_" + "C" * 43}), 429, "too_many_auth_failures")
    assert lookups == []  # refused before the database is asked


async def test_no_failure_limit_when_it_is_zero(tmp_path):
    api = Api(tmp_path, settings_kw={"api_auth_failure_limit": 0})
    _probe_routes(api)
    async with api.client() as client:
        statuses = {(await client.get("/v1/probe/caller", headers={"Authorization": "Bearer hsk_" + "B" * 43})).status_code for _ in range(80)}
    assert statuses == {401}
