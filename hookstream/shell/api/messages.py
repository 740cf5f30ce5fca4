"""``/v1/messages``: one event to one endpoint (the webhook-id), its attempts, resend (Svix's ``msg``
and ``attempt``). Tenant-scoped: another tenant's message is 404."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from hookstream.shell.api.auth import tenant_of
from hookstream.shell.api.resources import TIME_PATTERN, AttemptList, MessageOut, MessagePage
from hookstream.shell.api.wiring import PROBLEMS, known_query, services
from hookstream.shell.services import Services
from hookstream.shell.services.messages import MessageFilter
from hookstream.shell.services.pages import DEFAULT_LIMIT, MAX_LIMIT
from hookstream.shell.services.times import window

router = APIRouter(prefix="/messages", tags=["messages"], responses=PROBLEMS, dependencies=[Depends(known_query)])


@router.get("", response_model=MessagePage, summary="List messages, newest latest attempt first")
def list_messages(
    endpoint_id: str | None = Query(None, max_length=128),
    event_type: str | None = Query(None, max_length=128, description="An event type or a prefix like payment.*"),
    status: str | None = Query(None, pattern="^(succeeded|failed|dead|pending)$",
                               description="succeeded; pending (a retry is due); dead; failed (pending or dead)."),
    since: str | None = Query(None, max_length=64, pattern=TIME_PATTERN, description="Latest attempt at or after: RFC 3339 or a span (2h)."),
    until: str | None = Query(None, max_length=64, pattern=TIME_PATTERN, description="Latest attempt before: RFC 3339 or a span."),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    iterator: str | None = Query(None, max_length=512),
    tenant: str = Depends(tenant_of),
    svc: Services = Depends(services),
) -> dict:
    start, end = window(since, until)
    flt = MessageFilter(endpoint_id=endpoint_id, event_type=event_type, status=status, since=start, until=end)
    page = svc.messages.list(tenant_id=tenant, limit=limit, iterator=iterator, filters=flt)
    return {"data": [m.as_dict() for m in page.data], "iterator": page.iterator, "done": page.done}


@router.get("/{message_id}", response_model=MessageOut, summary="Get a message")
def get_message(message_id: str, tenant: str = Depends(tenant_of), svc: Services = Depends(services)) -> dict:
    return svc.messages.get(message_id, tenant_id=tenant).as_dict()


@router.get("/{message_id}/attempts", response_model=AttemptList, summary="Every attempt of a message, oldest first")
def list_attempts(message_id: str, tenant: str = Depends(tenant_of), svc: Services = Depends(services)) -> dict:
    return {"data": svc.messages.attempts(message_id, tenant_id=tenant)}


@router.post("/{message_id}/resend", status_code=202, response_model=MessageOut,
             summary="Send a message again (same webhook-id, fresh attempts)")
def resend_message(message_id: str, tenant: str = Depends(tenant_of), svc: Services = Depends(services)) -> dict:
    return svc.messages.resend(message_id, tenant_id=tenant).as_dict()
