"""The ASGI app: ``create_app(settings, **injected)``.

Routers: ``health`` (``/healthz``, ``/readyz``) at the root; under ``/v1`` every module of
``RESOURCE_MODULES`` that exists and has a ``router`` (an ``APIRouter``), so a resource module
arriving later needs no change here. Errors: ``problems.install`` (RFC 9457 everywhere).
``injected`` goes to the ``ApiContext`` (``engine``, ``publisher``, ``key_store``, ``limiter``,
anything else lands in ``ctx.extra``).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from hookstream.core.settings import Settings
from hookstream.shell.api import health, problems
from hookstream.shell.api.context import ApiContext

API_VERSION = "1.0.0"
# Resource modules under hookstream.shell.api mounted at /v1, in this order (missing ones skipped).
RESOURCE_MODULES = ("events", "event_types", "endpoints", "messages", "dlq")
# The largest request body any route reads (a batch of events); single events have their own limit.
MAX_BODY_BYTES = 32 * 1024 * 1024

DESCRIPTION = """\
hookstream's HTTP API: ingest events, read the event catalogue, manage endpoints.

Authentication: `Authorization: Bearer hsk_...` (`hookstream api-keys create`). A tenant key acts
for its own tenant; an admin key names the tenant in the `Hookstream-Tenant` header.
Errors are `application/problem+json` (RFC 9457) with a stable `code` and the `field` at fault.
"""


def create_app(settings: Settings, **injected: Any) -> FastAPI:
    ctx = ApiContext(settings, **injected)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await ctx.close()

    app = FastAPI(
        title="hookstream",
        version=API_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # no HTML pages (they load scripts from a CDN): /openapi.json is the contract
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.ctx = ctx
    problems.install(app)
    app.add_middleware(problems.BodyGuard, max_body_bytes=MAX_BODY_BYTES, body_timeout=settings.api_body_timeout_seconds)
    app.include_router(health.router)
    schemas: dict[str, Any] = {}
    for name in RESOURCE_MODULES:
        module = _module(name)
        if module is not None and getattr(module, "router", None) is not None:
            # every /v1 route may answer these (auth, rate limit, input), as problem documents
            app.include_router(module.router, prefix="/v1", responses=problems.problem_responses(400, 401, 422, 429))
            schemas.update(getattr(module, "OPENAPI_SCHEMAS", {}))  # hand-written schemas routes $ref
    if schemas:
        _add_schemas(app, schemas)
    return app


def _module(name: str) -> Any:
    try:
        return importlib.import_module(f"hookstream.shell.api.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"hookstream.shell.api.{name}":
            raise  # the module exists but imports something missing: a real error
        return None


def _add_schemas(app: FastAPI, schemas: dict[str, Any]) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            document.setdefault("components", {}).setdefault("schemas", {}).update(schemas)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
