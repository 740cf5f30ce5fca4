"""Who is calling, for which tenant, and how often: FastAPI dependencies.

- ``caller`` (``authenticate`` as a plain call): the ``Authorization: Bearer hsk_...`` key as a
  ``Caller`` (401 ``unauthorized`` without a key, with a malformed, unknown or revoked one), then
  the key's rate limit (429 ``rate_limited`` with ``Retry-After``). Failed authentications are
  counted per client address (``HOOKSTREAM_API_AUTH_FAILURE_LIMIT`` a minute): past the limit,
  that address's requests without a key known to be good get 429 ``too_many_auth_failures``
  before any lookup; a valid key is never refused for another address's failures.
  Either header (``Authorization``, ``Hookstream-Tenant``) given twice: 400 ``duplicate_header``.
- ``tenant_of``: the tenant the request acts for. A tenant key acts for its own tenant (a
  ``Hookstream-Tenant`` header naming another is 403 ``tenant_mismatch``); an admin key names
  the tenant in the ``Hookstream-Tenant`` header (400 ``tenant_required`` without it).
- ``admin_only``: admin keys only; a tenant key gets 403 ``admin_only`` (the admin routes are
  in the public OpenAPI document, so a 404 would hide nothing).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from hookstream.core.errors import ValidationError
from hookstream.shell.api.context import ApiContext, context
from hookstream.shell.api.keys import hash_key, looks_like_key
from hookstream.shell.api.problems import Problem

TENANT_HEADER = "Hookstream-Tenant"
TENANT_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"  # as hookstream.subscriptions.store.validate_tenant checks

_SINGLE_HEADERS = ("Authorization", TENANT_HEADER)  # each at most once in a request
_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer hsk_...` (`hookstream api-keys create`).")


@dataclasses.dataclass(frozen=True)
class Caller:
    key_id: str
    tenant_id: str | None  # None for an admin key
    admin: bool


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="hookstream"'})


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ctx: Annotated[ApiContext, Depends(context)],
) -> Caller:
    """The authenticated caller, within its rate limit."""
    return await authenticate(request, ctx, credentials.credentials if credentials is not None else None)


async def authenticate(request: Request, ctx: ApiContext, plain: str | None) -> Caller:
    """What ``caller`` does, as a plain call (the ingest routes use it directly: FastAPI's
    dependency solving cost them more than the rest of the route). ``plain``: the bearer token,
    None when there is none (``bearer_token`` reads it as ``HTTPBearer`` does)."""
    headers = request.headers
    for name in _SINGLE_HEADERS:  # a proxy may check one value and the app read the other
        if len(headers.getlist(name)) > 1:
            raise Problem(400, "duplicate_header", f"{name}: given more than once; send it once", name)
    address = request.client.host if request.client is not None else ""
    if plain is None:
        _check_failures(ctx, address)
        raise _failed(ctx, address, "the Authorization header is not 'Bearer <API key>'" if headers.get("authorization")
                      else "no API key: send 'Authorization: Bearer hsk_...'")
    if not looks_like_key(plain):
        _check_failures(ctx, address)
        raise _failed(ctx, address, "the API key is malformed (keys look like hsk_ and 43 more characters)")
    digest = hash_key(plain)
    found, key = ctx.key_cache.get(digest)
    if key is None:  # not a key known to be good: an address over its failures is not even looked up
        _check_failures(ctx, address)
        if not found:
            key = await run_in_threadpool(ctx.key_store.authenticate, plain)
            ctx.key_cache.put(digest, key)
    if key is None:
        raise _failed(ctx, address, "the API key is unknown or revoked")
    wait = ctx.limiter.take(key.id)
    if wait is not None:
        raise Problem(429, "rate_limited", f"over this key's rate limit of {ctx.limiter.rate:g} requests/s; retry after the Retry-After seconds",
                      headers={"Retry-After": str(max(1, math.ceil(wait)))})
    return Caller(key.id, key.tenant_id, key.admin)


def _check_failures(ctx: ApiContext, address: str) -> None:
    """429 when ``address`` used up its failed authentications (only requests without a key known
    to be good get here: a valid key, from this address or any other, is never refused for them)."""
    wait = ctx.auth_failures.wait(address)
    if wait is not None:
        raise Problem(429, "too_many_auth_failures", "too many failed authentications from this address; retry after the Retry-After seconds",
                      headers={"Retry-After": str(max(1, math.ceil(wait)))})


def _failed(ctx: ApiContext, address: str, detail: str) -> Problem:
    ctx.auth_failures.take(address)
    return _unauthorized(detail)


def bearer_token(authorization: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>``, or None (as FastAPI's ``HTTPBearer`` reads it)."""
    scheme, token = get_authorization_scheme_param(authorization)
    if not (authorization and scheme and token) or scheme.lower() != "bearer":
        return None
    return token


async def tenant_of(
    who: Annotated[Caller, Depends(caller)],
    tenant: Annotated[str | None, Header(
        alias=TENANT_HEADER, description="The tenant an admin key acts for (tenant keys may leave it out).",
        json_schema_extra={"pattern": TENANT_PATTERN})] = None,
) -> str:
    """The tenant this request acts for."""
    return tenant_for(who, tenant)


def tenant_for(who: Caller, tenant: str | None) -> str:
    """What ``tenant_of`` answers, as a plain call: ``tenant`` is the ``Hookstream-Tenant`` header."""
    if tenant is not None:
        from hookstream.subscriptions.store import validate_tenant

        try:
            validate_tenant(tenant)
        except ValidationError as exc:
            raise Problem(400, "invalid_tenant", f"{TENANT_HEADER}: {exc}".replace("tenant: ", "", 1), TENANT_HEADER) from None
    if not who.admin:
        if tenant is not None and tenant != who.tenant_id:
            raise Problem(403, "tenant_mismatch", f"this API key acts for its own tenant only; {TENANT_HEADER} names another", TENANT_HEADER)
        assert who.tenant_id is not None
        return who.tenant_id
    if tenant is None:
        raise Problem(400, "tenant_required", f"an admin key names the tenant it acts for in the {TENANT_HEADER} header", TENANT_HEADER)
    return tenant


async def admin_only(who: Annotated[Caller, Depends(caller)]) -> Caller:
    """The caller, when it holds an admin key."""
    if not who.admin:
        raise Problem(403, "admin_only", "this operation needs an admin API key (`hookstream api-keys create --admin`)")
    return who
