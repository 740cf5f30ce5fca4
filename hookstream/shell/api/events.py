"""``POST /v1/events`` and ``POST /v1/events/batch``: parse, call ``ingest``, answer.

Bodies are read here rather than by FastAPI's model binding, so that the limits, the media type
and the JSON are checked the same way for every request, and the event is validated by
``hookstream.schemas`` (the one contract) rather than by a second, Python-side model of it.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from hookstream.schemas import EVENT_TYPES, example, json_schema
from hookstream.shell.api.auth import TENANT_HEADER, TENANT_PATTERN, authenticate, bearer_token, tenant_for
from hookstream.shell.api.context import ApiContext
from hookstream.shell.api.ingest import MAX_BATCH, Ingest, check_idempotency_key
from hookstream.shell.api.problems import Problem, body_too_large, problem_responses

router = APIRouter(tags=["events"])

_JSON_TYPES = ("application/json",)


_PRINTABLE_ID = {"type": "string", "pattern": "^[\\x21-\\x7e]{1,128}$"}


def _event_type_schema(event_type: str) -> dict[str, Any]:
    """One type's JSON Schema (``hookstream.schemas``) as a request body: the fields the server
    fills are optional, and the ids say what the server also enforces (printable ASCII)."""
    doc = json_schema(event_type)
    for name in ("$schema", "$id"):
        doc.pop(name, None)
    props = doc["properties"]
    doc["required"] = ["type", "data"]
    props["id"] = {**_PRINTABLE_ID, "description": props["id"].get("description", "")}
    props["tenant_id"] = {**_PRINTABLE_ID, "description": "Must be the tenant the request acts for."}
    props["correlation_id"] = {"anyOf": [_PRINTABLE_ID, {"type": "null"}], "description": props["correlation_id"].get("description", "")}
    props["occurred_at"] = {"type": "string", "format": "date-time", "description": props["occurred_at"].get("description", "")}
    return doc


def _event_schema() -> dict[str, Any]:
    return {
        "title": "EventIn",
        "description": "An event envelope. `id`, `occurred_at`, `schema_version` and `tenant_id` may be left out: "
                       "the server fills them (a new UUIDv7, now, the type's current version, the request's tenant). "
                       "`data` must satisfy the type's JSON Schema (`GET /v1/event-types/{type}`).",
        "oneOf": [_event_type_schema(t) for t in EVENT_TYPES],
        "example": {"type": "payment.received", "data": example("payment.received")},
    }


# Schemas the routes above refer to by $ref; create_app adds them to the document's components.
OPENAPI_SCHEMAS = {"EventIn": _event_schema()}


class EventAccepted(BaseModel):
    """An accepted event: its envelope without `data`."""

    id: str
    type: str
    tenant_id: str
    occurred_at: str
    schema_version: int
    correlation_id: str | None = None


class BatchResult(BaseModel):
    """One event of a batch: `status` 202 with `event`, or another status with `problem`."""

    index: int
    status: int
    replayed: bool = False
    event: EventAccepted | None = None
    problem: dict[str, Any] | None = None


class BatchAccepted(BaseModel):
    accepted: int
    failed: int
    results: list[BatchResult]


async def read_json(request: Request, limit: int) -> Any:
    """The request's JSON body, or a ``Problem``: 415 (media type, charset, content encoding),
    413 (over ``limit`` bytes), 400 (empty, not JSON, not UTF-8)."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise Problem(415, "unsupported_media_type", f"Content-Encoding {encoding[:40]!r} is not accepted; send the JSON uncompressed", "Content-Encoding")
    media, _, params = request.headers.get("content-type", "").partition(";")
    media = media.strip().lower()
    if media not in _JSON_TYPES and not (media.startswith("application/") and media.endswith("+json")):
        raise Problem(415, "unsupported_media_type", "the body must be JSON: Content-Type: application/json", "Content-Type")
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise Problem(415, "unsupported_media_type", "JSON bodies are UTF-8 (charset=utf-8)", "Content-Type")
    body = await request.body()
    if len(body) > limit:
        raise body_too_large(limit)
    if not body.strip():
        raise Problem(400, "invalid_json", "the body is empty; it must be JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, "invalid_json", f"the body is not valid UTF-8 JSON: {str(exc).splitlines()[0][:200]}") from None


class _Json(JSONResponse):
    """JSON by orjson: a batch's answer holds 1,000 results."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _answer(status: int, body: dict[str, Any], replayed: bool) -> JSONResponse:
    return _Json(body, status_code=status, headers={"Idempotent-Replayed": "true"} if replayed else None)


_COMMON = (400, 401, 403, 409, 413, 415, 422, 429, 503)


def _header(name: str, description: str, pattern: str) -> dict[str, Any]:
    """An optional header parameter, as FastAPI would describe ``Header(alias=name)``."""
    return {"name": name, "in": "header", "required": False, "description": description,
            "schema": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": description, "pattern": pattern, "title": name}}


# The ingest routes take the request alone and read their headers themselves (``_caller``):
# FastAPI's dependency solving cost them more than the rest of the route. Their document says
# what they read, as the dependencies would have.
_INGEST_OPENAPI = {
    "security": [{"HTTPBearer": []}],
    "parameters": [
        _header("Idempotency-Key", "Makes the request idempotent for 24 h: the same key and body get the same answer and publish once.",
                "^[\\x21-\\x7e]{1,255}$"),
        _header(TENANT_HEADER, "The tenant an admin key acts for (tenant keys may leave it out).", TENANT_PATTERN),
    ],
}


async def _caller(request: Request) -> tuple[ApiContext, str, str | None]:
    """(context, tenant, idempotency key) of an ingest request: what ``tenant_of`` and a header
    parameter would give, checked in the same order (key, rate limit, tenant, idempotency key)."""
    ctx: ApiContext = request.app.state.ctx
    who = await authenticate(request, ctx, bearer_token(request.headers.get("authorization")))
    tenant = tenant_for(who, request.headers.get(TENANT_HEADER))
    return ctx, tenant, check_idempotency_key(request.headers.get("idempotency-key"))


@router.post(
    "/events",
    status_code=202,
    summary="Ingest one event",
    response_model=EventAccepted,
    responses=problem_responses(*_COMMON),
    openapi_extra={**_INGEST_OPENAPI, "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventIn"}}}}},
)
async def ingest_event(request: Request) -> Any:
    """Validate the event and publish it; 202 once the broker acknowledged it. With an
    `Idempotency-Key` (or the event's own `id`) a repeated request gets the first answer
    (header `Idempotent-Replayed: true`) and publishes nothing."""
    ctx, tenant, key = await _caller(request)
    # twice the event limit: room for whitespace; the serialised event itself is checked exactly
    doc = await read_json(request, 2 * ctx.settings.max_event_bytes)
    outcome = await Ingest.of(ctx).one(tenant, doc, key)
    return _answer(outcome.status, outcome.body, outcome.replayed)


@router.post(
    "/events/batch",
    status_code=202,
    summary=f"Ingest up to {MAX_BATCH} events",
    response_model=BatchAccepted,
    responses=problem_responses(*_COMMON),
    openapi_extra={**_INGEST_OPENAPI, "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "title": "EventBatchIn", "required": ["events"],
        "properties": {"events": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": {"$ref": "#/components/schemas/EventIn"}}},
    }}}}},
)
async def ingest_batch(request: Request) -> Any:
    """Validate every event first (any invalid: 422 with `errors`, one per invalid event, and
    nothing is sent), then publish them; one result per event, in order. 202 unless the broker
    took none of them (503)."""
    ctx, tenant, key = await _caller(request)
    from hookstream.shell.api.app import MAX_BODY_BYTES

    doc = await read_json(request, MAX_BODY_BYTES)
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise Problem(422, "validation_error", "the body must be an object with an array 'events'", "events")
    outcomes = await Ingest.of(ctx).batch(tenant, doc["events"], key)
    results = []
    for i, o in enumerate(outcomes):
        ok = o.status == 202
        results.append({"index": i, "status": o.status, "replayed": o.replayed,
                        "event": o.body if ok else None, "problem": None if ok else o.body})
    accepted = sum(1 for o in outcomes if o.status == 202)
    if accepted == 0 and all(o.status == 503 for o in outcomes):
        raise Problem(503, "broker_unavailable", "the broker acknowledged none of the events; retry with the same Idempotency-Key",
                      headers={"Retry-After": "5"}, extra={"results": results})
    return _Json({"accepted": accepted, "failed": len(outcomes) - accepted, "results": results}, status_code=202)
