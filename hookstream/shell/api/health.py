"""``/healthz`` (the process answers) and ``/readyz`` (the broker and the database answer).

Readiness checks are bounded (``CHECK_TIMEOUT`` each, run side by side) and need no API key, so
a load balancer or an orchestrator can probe them; they say which dependency failed, nothing more.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import text

from hookstream.shell.api.context import ApiContext, context

CHECK_TIMEOUT = 2.0  # seconds per dependency

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _database(ctx: ApiContext) -> None:
    with ctx.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _broker(ctx: ApiContext) -> None:
    metadata = ctx.admin_client.list_topics(timeout=CHECK_TIMEOUT)
    if not metadata.brokers:
        raise RuntimeError("no broker in the metadata")


async def _check(check, ctx: ApiContext) -> str:
    try:
        await asyncio.wait_for(run_in_threadpool(check, ctx), CHECK_TIMEOUT + 0.5)
        return "ok"
    except Exception:  # noqa: BLE001 - any failure means "not ready"; the answer names which
        return "unavailable"


@router.get(
    "/readyz",
    summary="The broker and the database answer",
    responses={503: {"description": "A dependency does not answer", "content": {"application/json": {}}}},
)
async def readyz(ctx: Annotated[ApiContext, Depends(context)]) -> Any:
    database, broker = await asyncio.gather(_check(_database, ctx), _check(_broker, ctx))
    checks = {"database": database, "broker": broker}
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503)
