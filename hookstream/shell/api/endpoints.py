"""``/v1/endpoints``: a tenant's webhook endpoints (subscriptions), after Svix's ``endpoint``.

Each handler parses, calls one ``EndpointService`` method and shapes the answer. The tenant is the
key's (or an admin key's ``Hookstream-Tenant``); another tenant's endpoint is 404. The secret is
in clear in the answers of create and rotate (once) and of ``GET .../secret`` (admin keys only).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response

from hookstream.shell.api.auth import admin_only, tenant_of
from hookstream.shell.api.resources import (
    EndpointIn, EndpointOut, EndpointPage, EndpointPatch, EndpointWithSecret, RecoverIn, RecoverOut, RotateIn, SecretKey,
    StatsOut, TestIn, TestOut,
)
from hookstream.shell.api.wiring import PROBLEMS, known_query, services
from hookstream.shell.services import Services
from hookstream.shell.services.endpoints import Changed, public
from hookstream.shell.services.pages import DEFAULT_LIMIT, MAX_LIMIT
from hookstream.shell.services.times import window

router = APIRouter(prefix="/endpoints", tags=["endpoints"], responses=PROBLEMS, dependencies=[Depends(known_query)])


def _with_secret(changed: Changed) -> dict:
    return {"endpoint": public(changed.endpoint), "secret": changed.secret, "published": changed.published}


@router.post("", status_code=201, response_model=EndpointWithSecret, summary="Create an endpoint")
def create_endpoint(body: EndpointIn, tenant: str = Depends(tenant_of), svc: Services = Depends(services)) -> dict:
    return _with_secret(svc.endpoints.create(tenant_id=tenant, url=body.url, events=body.events, description=body.description,
                                             headers=body.headers, secret=body.secret))


@router.get("", response_model=EndpointPage, summary="List endpoints, newest first")
def list_endpoints(
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    iterator: str | None = Query(None, max_length=512),
    status: str | None = Query(None, pattern="^(active|disabled)$"),
    event_type: str | None = Query(None, max_length=128, description="Endpoints whose filters select this type."),
    tenant: str = Depends(tenant_of),
    svc: Services = Depends(services),
) -> dict:
    page = svc.endpoints.list(tenant_id=tenant, limit=limit, iterator=iterator, status=status, event_type=event_type)
    return {"data": [public(s) for s in page.data], "iterator": page.iterator, "done": page.done}


@router.get("/{endpoint_id}", response_model=EndpointOut, summary="Get an endpoint")
def get_endpoint(endpoint_id: str, tenant: str = Depends(tenant_of), svc: Services = Depends(services)) -> dict:
    return public(svc.endpoints.get(endpoint_id, tenant_id=tenant))


@router.patch("/{endpoint_id}", response_model=EndpointOut, summary="Change an endpoint's URL, filters, description or headers")
def update_endpoint(endpoint_id: str, body: EndpointPatch, tenant: str = Depends(tenant_of), svc: Services = Depends(services)) -> dict:
    changed = svc.endpoints.update(endpoint_id, tenant_id=tenant, url=body.url, events=body.events,
                                   description=body.description, headers=body.headers)
    return public(changed.endpoint)


@router.delete("/{endpoint_id}", status_code=204, response_class=Response, summary="Delete an endpoint")
def delete_endpoint(endpoint_id: str, tenant: str = Depends(tenant_of), svc: Services = Depends(services)) -> Response:
    svc.endpoints.delete(endpoint_id, tenant_id=tenant)
    return Response(status_code=204)


@router.post("/{endpoint_id}/enable", response_model=EndpointOut, summary="Resume deliveries")
def enable_endpoint(endpoint_id: str, tenant: str = Depends(tenant_of), svc: Services = Depends(services)) -> dict:
    return public(svc.endpoints.enable(endpoint_id, tenant_id=tenant).endpoint)


@router.post("/{endpoint_id}/disable", response_model=EndpointOut, summary="Stop deliveries (kept; enable resumes)")
def disable_endpoint(endpoint_id: str, tenant: str = Depends(tenant_of), svc: Services = Depends(services)) -> dict:
    return public(svc.endpoints.disable(endpoint_id, tenant_id=tenant).endpoint)


@router.get("/{endpoint_id}/secret", response_model=SecretKey, summary="The current signing secret (admin keys only)",
            dependencies=[Depends(admin_only)])
def get_endpoint_secret(endpoint_id: str, tenant: str = Depends(tenant_of), svc: Services = Depends(services)) -> dict:
    return {"key": svc.endpoints.secret(endpoint_id, tenant_id=tenant)}


@router.post("/{endpoint_id}/secret/rotate", response_model=EndpointWithSecret,
             summary="Issue a new secret; older ones keep signing for the grace window")
def rotate_endpoint_secret(endpoint_id: str, body: RotateIn | None = None, tenant: str = Depends(tenant_of),
                           svc: Services = Depends(services)) -> dict:
    grace = body.grace_seconds if body is not None else None
    return _with_secret(svc.endpoints.rotate_secret(endpoint_id, tenant_id=tenant, grace_seconds=grace))


@router.post("/{endpoint_id}/test", status_code=202, response_model=TestOut,
             summary="Send an example event of a chosen type to this endpoint through the delivery path")
def send_test_message(endpoint_id: str, body: TestIn, tenant: str = Depends(tenant_of), svc: Services = Depends(services)) -> dict:
    return {"message_id": svc.endpoints.send_test(endpoint_id, tenant_id=tenant, event_type=body.event_type)}


@router.post("/{endpoint_id}/recover", status_code=202, response_model=RecoverOut,
             summary="Re-send the endpoint's events of a time window (webhook-ids of the first time)")
def recover_endpoint(endpoint_id: str, body: RecoverIn, tenant: str = Depends(tenant_of), svc: Services = Depends(services)) -> dict:
    since, until = window(body.since, body.until)
    report = svc.endpoints.recover(endpoint_id, tenant_id=tenant, since=since, until=until, dry_run=body.dry_run)
    return {"endpoint_id": endpoint_id, "dry_run": body.dry_run, "scanned": report.scanned, "queued": report.queued,
            "skipped_invalid": report.skipped_invalid, "refused": report.refused}


@router.get("/{endpoint_id}/stats", response_model=StatsOut, summary="Attempts and latency over the last hour and day")
def endpoint_stats(endpoint_id: str, tenant: str = Depends(tenant_of), svc: Services = Depends(services)) -> dict:
    return svc.endpoints.stats(endpoint_id, tenant_id=tenant)
