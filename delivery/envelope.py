"""The body every webhook carries: ``{"type": ..., "timestamp": ..., "data": {...}}``.

Built once, as compact bytes, and those exact bytes are both signed and sent. It lives apart
from ``signing`` so that module stays stdlib-only (receivers can take it alone); this one uses
orjson, which is several times faster than ``json`` on the hot path.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import orjson

from hookstream.core.errors import ValidationError
from hookstream.core.time import format_time

__all__ = ["payload"]


def _rfc3339(occurred_at: dt.datetime) -> str:
    """UTC with a ``Z``: a naive datetime has no meaning to a receiver, so it is refused."""
    if not isinstance(occurred_at, dt.datetime):
        raise ValidationError("occurred_at must be a datetime")
    if occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
        raise ValidationError("occurred_at must be timezone-aware (a naive datetime has no instant)")
    return format_time(occurred_at, timespec="auto")  # no microseconds when they are zero: receivers see that form


def payload(event_type: str, occurred_at: dt.datetime, data: Mapping[str, Any]) -> bytes:
    """The compact JSON body for one event, keys in the order the spec shows them."""
    if not isinstance(event_type, str) or not event_type.strip():
        raise ValidationError("event type must be a non-empty string")
    if not isinstance(data, Mapping):
        raise ValidationError("event data must be a JSON object (a mapping)")
    body = {"type": event_type, "timestamp": _rfc3339(occurred_at), "data": dict(data)}
    try:
        return orjson.dumps(body)
    except TypeError as exc:
        raise ValidationError(f"event data is not JSON: {exc}") from exc
