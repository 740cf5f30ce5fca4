"""``GET /v1/event-types`` and ``GET /v1/event-types/{type}``: the event catalogue
(``hookstream.schemas``), for any API key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from hookstream.schemas import CURRENT_VERSIONS, EVENT_TYPES, example, get_schema, json_schema
from hookstream.shell.api.auth import Caller, caller
from hookstream.shell.api.problems import Problem, problem_responses

router = APIRouter(tags=["event-types"])


class EventTypeSummary(BaseModel):
    type: str
    version: int
    description: str
    entity_field: str  # the data field that keys the event (its entity's id)


class EventTypeList(BaseModel):
    data: list[EventTypeSummary]


class EventTypeDetail(EventTypeSummary):
    json_schema: dict[str, Any]  # JSON Schema 2020-12 of a whole event of this type (envelope and data)
    example: dict[str, Any]  # a valid `data` object


def _summary(event_type: str) -> dict[str, Any]:
    schema = get_schema(event_type)
    return {"type": schema.type, "version": schema.version, "description": schema.description, "entity_field": schema.entity_field}


@router.get("/event-types", summary="The event types", response_model=EventTypeList, responses=problem_responses(401, 429))
async def list_event_types(_who: Annotated[Caller, Depends(caller)]) -> Any:
    """Every event type at its current schema version."""
    return {"data": [_summary(t) for t in EVENT_TYPES]}


@router.get("/event-types/{event_type}", summary="One event type: its JSON Schema and an example",
            response_model=EventTypeDetail, responses=problem_responses(401, 404, 429))
async def get_event_type(event_type: str, _who: Annotated[Caller, Depends(caller)]) -> Any:
    if event_type not in CURRENT_VERSIONS:
        raise Problem(404, "not_found", f"no event type {event_type[:60]!r} (see GET /v1/event-types)", "event_type")
    return {**_summary(event_type), "json_schema": json_schema(event_type), "example": example(event_type)}
