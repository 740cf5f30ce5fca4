"""``/v1/dlq``: dead letters, admin keys only (filters and replay as ``hookstream dlq``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from hookstream.shell.api.auth import admin_only
from hookstream.shell.api.resources import TIME_PATTERN, DeadLetterPage, ReplayIn, ReplayOut
from hookstream.shell.api.wiring import PROBLEMS, known_query, services
from hookstream.shell.services import Services
from hookstream.shell.services.dlq import make_filter
from hookstream.shell.services.pages import DEFAULT_LIMIT, MAX_LIMIT

router = APIRouter(prefix="/dlq", tags=["dead letters"], responses=PROBLEMS, dependencies=[Depends(admin_only), Depends(known_query)])


@router.get("", response_model=DeadLetterPage, summary="List dead letters, newest first (admin)")
def list_dead_letters(
    tenant_id: str | None = Query(None, max_length=128, description="Only this tenant's (default: every tenant's)."),
    endpoint_id: str | None = Query(None, max_length=128),
    event_type: str | None = Query(None, max_length=128, description="An event type or a prefix like payment.*"),
    since: str | None = Query(None, max_length=64, pattern=TIME_PATTERN, description="RFC 3339 or a span back from now (2h, 7d)."),
    until: str | None = Query(None, max_length=64, pattern=TIME_PATTERN),
    reason: str | None = Query(None, max_length=200, description="The reason contains this text (client_error, exhausted, ...)."),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    iterator: str | None = Query(None, max_length=512),
    svc: Services = Depends(services),
) -> dict:
    flt = make_filter(tenant_id=tenant_id, endpoint_id=endpoint_id, event_type=event_type, since=since, until=until, reason=reason)
    page = svc.dlq.list(flt, limit=limit, iterator=iterator)
    return {"data": [d.summary() for d in page.data], "iterator": page.iterator, "done": page.done}


@router.post("/replay", response_model=ReplayOut, summary="Replay matching dead letters (recorded, not doubled) (admin)")
def replay_dead_letters(body: ReplayIn, svc: Services = Depends(services)) -> dict:
    flt = make_filter(tenant_id=body.tenant_id, endpoint_id=body.endpoint_id, event_type=body.event_type, since=body.since,
                      until=body.until, reason=body.reason)
    entries, report = svc.dlq.replay(flt, dry_run=body.dry_run, force=body.force)
    return {"dry_run": body.dry_run, "matched": len(entries), "replayed": report.replayed, "already_replayed": report.already,
            "not_replayable": report.not_replayable, "failed": report.failed}
