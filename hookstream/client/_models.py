"""What the API returns, as frozen dataclasses (unknown fields are ignored: newer servers may add some)."""

from __future__ import annotations

import dataclasses
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def _build(cls, doc: dict[str, Any]):
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in doc.items() if k in names})


@dataclasses.dataclass(frozen=True)
class Endpoint:
    id: str
    tenant_id: str
    url: str  # query, fragment and user-info masked
    events: list[str]
    status: str  # active | disabled
    description: str
    headers: dict[str, str]  # values masked
    secrets: list[dict[str, Any]]  # masked, newest first; older ones with expires_at
    created_at: str
    updated_at: str
    version: int
    published: bool  # False: saved, not on the subscriptions topic yet

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "Endpoint":
        return _build(cls, doc)


@dataclasses.dataclass(frozen=True)
class EndpointWithSecret:
    """After create and rotate: the only answers (besides an admin's GET .../secret) carrying the secret."""

    endpoint: Endpoint
    secret: str

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "EndpointWithSecret":
        return cls(Endpoint.from_json(doc["endpoint"]), doc["secret"])


@dataclasses.dataclass(frozen=True)
class Message:
    id: str  # the webhook-id
    tenant_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: str  # the latest attempt's: succeeded | failed (a retry is due) | dead
    attempts: int
    first_attempt_at: str
    last_attempt_at: str
    last_status_code: int | None

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "Message":
        return _build(cls, doc)


@dataclasses.dataclass(frozen=True)
class Attempt:
    attempt: int
    attempted_at: str
    status: str
    status_code: int | None
    duration_ms: float
    reason: str | None
    response_excerpt: str | None

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "Attempt":
        return _build(cls, doc)


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    id: str  # partition-offset
    reason: str
    dead_lettered_at: str | None
    delivery_id: str | None
    tenant_id: str | None
    subscription_id: str | None
    event_type: str | None
    event_id: str | None
    attempts: int
    last_error: str

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "DeadLetter":
        return _build(cls, doc)


@dataclasses.dataclass(frozen=True)
class Page(Generic[T]):
    data: list[T]
    iterator: str | None  # pass it back for the next page
    done: bool
