"""Request and response bodies of the management routes (endpoints, messages, dead letters).

They are the OpenAPI document's schemas: the shapes here are what the service layer returns,
written down so clients and Schemathesis can check every answer.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from hookstream.schemas import EVENT_TYPES
from hookstream.subscriptions.filters import KNOWN_EVENT_TYPES

# every filter an endpoint may hold: '*', '<aggregate>.*' or a known type
_FILTERS = ("*", *sorted({t.rsplit(".", 1)[0] + ".*" for t in KNOWN_EVENT_TYPES}), *sorted(KNOWN_EVENT_TYPES))
Filter = Literal[_FILTERS]  # type: ignore[valid-type]
EventType = Literal[tuple(EVENT_TYPES)]  # type: ignore[valid-type]
# RFC 3339 (or a date), or a span back from now: checked again, as a real moment, by the service
TIME_PATTERN = r"^(\d+(\.\d+)?[smhd]|\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})?)?)$"
Moment = Annotated[str, Field(max_length=64, pattern=TIME_PATTERN)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------- endpoints
class EndpointIn(_In):
    url: str = Field(description="Where to deliver: https (unless HOOKSTREAM_ALLOW_HTTP), never a private address.",
                     max_length=4096)
    events: list[Filter] = Field(
        description="Event filters: exact types (payment.received), prefixes (payment.*) or *.", min_length=1, max_length=100)
    description: str = Field("", max_length=500)
    headers: dict[str, str] | None = Field(None, description="Custom headers sent with every delivery (values never shown again).")
    secret: str | None = Field(None, description="A whsec_ secret to use instead of a generated one.", max_length=200)


class EndpointPatch(_In):
    url: str | None = Field(None, max_length=4096)
    events: list[Filter] | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=500)
    headers: dict[str, str] | None = Field(None, description="Replaces every custom header ({} removes them).")


class SecretOut(BaseModel):
    secret: str = Field(description="Masked (whsec_MfKQ…).")
    expires_at: str | None = Field(description="Set on an older secret that still signs during its grace window.")


class EndpointOut(BaseModel):
    id: str
    tenant_id: str
    url: str = Field(description="Query, fragment and user-info masked.")
    events: list[str]
    status: str = Field(description="active or disabled.")
    description: str
    headers: dict[str, str] = Field(description="Names with values masked.")
    secrets: list[SecretOut]
    created_at: str
    updated_at: str
    version: int
    published: bool = Field(description="False: saved, not yet on the subscriptions topic (the next change or a sync publishes it).")
    sealed_error: str | None = None


class EndpointWithSecret(BaseModel):
    endpoint: EndpointOut
    secret: str = Field(description="The signing secret in clear: shown in this answer only.")
    published: bool


class EndpointPage(BaseModel):
    data: list[EndpointOut]
    iterator: str | None = Field(description="Give it back as ?iterator= for the next page; null when done.")
    done: bool


class RotateIn(_In):
    grace_seconds: float | None = Field(
        None, ge=0, le=30 * 86400, description="How long older secrets keep signing (default HOOKSTREAM_SECRET_GRACE, 24 h).")


class SecretKey(BaseModel):
    key: str = Field(description="The current signing secret in clear (admin keys only).")


class TestIn(_In):
    event_type: EventType = Field(description="One of GET /v1/event-types.")


class TestOut(BaseModel):
    message_id: str = Field(description="The webhook-id of the test message: GET /v1/messages/{message_id}.")


class RecoverIn(_In):
    since: Moment = Field(description="RFC 3339 time or a span back from now (2h, 7d).")
    until: Moment | None = Field(None, description="RFC 3339 time or a span back from now (default: now).")
    dry_run: bool = False


class RecoverOut(BaseModel):
    endpoint_id: str
    dry_run: bool
    scanned: int
    queued: int
    skipped_invalid: int
    refused: dict[str, str] = Field(description="Event id -> why the broker refused it (too large, say).")


class Latency(BaseModel):
    avg: float | None
    max: float | None
    p50: float | None
    p95: float | None
    p99: float | None


class StatsWindow(BaseModel):
    attempts: int
    succeeded: int
    failed: int
    dead: int
    latency_ms: Latency


class StatsOut(BaseModel):
    hour: StatsWindow
    day: StatsWindow


# ---------------------------------------------------------------------------- messages
class MessageOut(BaseModel):
    id: str = Field(description="The message id: the webhook-id the endpoint receives.")
    tenant_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: str = Field(description="The latest attempt's: succeeded, failed (a retry is due) or dead.")
    attempts: int
    first_attempt_at: str
    last_attempt_at: str
    last_status_code: int | None


class MessagePage(BaseModel):
    data: list[MessageOut]
    iterator: str | None
    done: bool


class AttemptOut(BaseModel):
    attempt: int
    attempted_at: str
    status: str
    status_code: int | None
    duration_ms: float
    reason: str | None = Field(description="Why it failed (URLs masked).")
    response_excerpt: str | None = Field(description="The start of the endpoint's answer (at most 1,024 characters).")


class AttemptList(BaseModel):
    data: list[AttemptOut]


# ---------------------------------------------------------------------------- dead letters
class DeadLetterOut(BaseModel):
    id: str = Field(description="partition-offset on the dead-letter topic.")
    reason: str
    dead_lettered_at: str | None
    delivery_id: str | None
    tenant_id: str | None
    subscription_id: str | None
    event_type: str | None
    event_id: str | None
    attempts: int
    last_error: str


class DeadLetterPage(BaseModel):
    data: list[DeadLetterOut]
    iterator: str | None
    done: bool


class ReplayIn(_In):
    tenant_id: str | None = Field(None, description="Only this tenant's (default: every tenant's).", max_length=128)
    endpoint_id: str | None = Field(None, max_length=128)
    event_type: str | None = Field(None, description="An event type or a prefix like payment.*", max_length=128)
    since: Moment | None = None
    until: Moment | None = None
    reason: str | None = Field(None, description="The reason contains this text.", max_length=200)
    dry_run: bool = False
    force: bool = Field(False, description="Replay entries replayed before, again.")


class ReplayOut(BaseModel):
    dry_run: bool
    matched: int
    replayed: list[str] = Field(description="Entries put back on the delivery path (would be, with dry_run).")
    already_replayed: dict[str, str] = Field(description="Entry -> when it was replayed before (force sends it again).")
    not_replayable: dict[str, str]
    failed: dict[str, str] = Field(description="Entry -> the broker's error: not recorded, a rerun sends them.")
