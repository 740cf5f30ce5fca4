"""Wire formats of the records the pipeline writes between its own stages.

A ``DeliveryRecord`` is one (event, endpoint) pair on the ``deliveries`` topic, keyed by the
subscription id. It never carries a secret: the delivery worker looks the signing secrets up in
its own view of the subscriptions topic. ``delivery_id`` is derived from the event id and the
subscription id, so every copy of the same delivery (a re-processed event after a crash, a
retry, a replay) carries the same ``webhook-id`` and receivers can drop duplicates.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from hookstream.core.redact import redact_urls

# Fixed namespace: delivery ids must be the same on every machine and in every release.
_DELIVERY_NAMESPACE = uuid.UUID("0f6c7f0a-5d1e-4e0b-9a57-6f9b1c0d2e31")


_NAMESPACE_BYTES = _DELIVERY_NAMESPACE.bytes


def delivery_id(event_id: str, subscription_id: str) -> str:
    """``msg_<32 hex>``: a UUIDv5 of (event id, subscription id).

    RFC 4122's name-based SHA-1 UUID, computed without building a ``uuid.UUID`` (a third of the
    cost, and the stream worker makes one per record): ``uuid.uuid5(...).hex`` gives the same.
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{event_id}\x1f{subscription_id}".encode(), usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return "msg_" + digest.hex()


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeliveryRecord:
    delivery_id: str
    subscription_id: str
    tenant_id: str
    event_id: str
    event_type: str
    occurred_at: str
    event: dict[str, Any]  # the whole event envelope as published
    attempt: int = 0  # attempts already made
    attempts: tuple[dict[str, Any], ...] = ()  # history: time, status or error, duration
    due_at: float | None = None  # unix seconds; set on retry tiers
    replay_of: str | None = None  # set when ops replay a dead letter

    def to_bytes(self) -> bytes:
        # explicit dict: dataclasses.asdict deep-copies the event and cost a quarter of the
        # stream worker's time per record
        return orjson.dumps(
            {
                "delivery_id": self.delivery_id,
                "subscription_id": self.subscription_id,
                "tenant_id": self.tenant_id,
                "event_id": self.event_id,
                "event_type": self.event_type,
                "occurred_at": self.occurred_at,
                "event": self.event,
                "attempt": self.attempt,
                "attempts": list(self.attempts),
                "due_at": self.due_at,
                "replay_of": self.replay_of,
            }
        )

    @classmethod
    def checked(
        cls, delivery_id: str, subscription_id: str, tenant_id: str, event_id: str, event_type: str, occurred_at: str,
        event: dict[str, Any], attempt: int, attempts: tuple[dict[str, Any], ...], due_at: float | None,
        replay_of: str | None,
    ) -> "DeliveryRecord":
        """A record from values already checked (``delivery.worker.decode_record``), every field
        given, in field order: the same object as the constructor makes, without its keyword
        ``__init__`` (a frozen dataclass sets each field through ``object.__setattr__``; this is
        5x cheaper, and the delivery worker makes one per record)."""
        rec = object.__new__(cls)
        rec.__dict__.update(
            delivery_id=delivery_id, subscription_id=subscription_id, tenant_id=tenant_id, event_id=event_id,
            event_type=event_type, occurred_at=occurred_at, event=event, attempt=attempt, attempts=attempts,
            due_at=due_at, replay_of=replay_of,
        )
        return rec

    @classmethod
    def from_bytes(cls, value: bytes) -> "DeliveryRecord":
        raw = orjson.loads(value)
        raw["attempts"] = tuple(raw.get("attempts") or ())
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in fields})


# ---------------------------------------------------------------------------- the subscriptions topic
# One record per change of a subscription on the compacted ``subscriptions`` topic; key = its id
# (UTF-8), value (a delete is a tombstone: no value)::
#
#     {"format": 2, "id": "sub_…", "tenant_id": "acme", "url": "https://…",
#      "events": ["payment.*", "invoice.created"], "status": "active" | "disabled",
#      "secrets": [{"secret": "hs1:<key id>:…", "expires_at": null | "2026-11-29T16:00:00.000000Z"}, …],
#      "headers": {"Authorization": "hs1:<key id>:…"}, "description": "…",
#      "created_at": "…Z", "updated_at": "…Z", "version": 7}
#
# Secrets and header values travel sealed (hookstream.subscriptions.sealed opens them into a
# ``Subscription``); format 1, written before sealing, had them in clear and is still read.
# Readers keep the highest ``version`` per id. A record is untrusted (anyone who can write to the
# topic wrote it): decoding it raises ``WireFormatError`` and nothing else, and the message never
# quotes a value (values include secrets).

SUBSCRIPTION_WIRE_FORMAT = 2
SUBSCRIPTION_CLEAR_WIRE_FORMAT = 1  # before sealing: read, never written
_PUBLISHED_STATUSES = ("active", "disabled")  # "deleted" is the store's own, until its tombstone is out


class WireFormatError(ValueError):
    """A record on the subscriptions topic that cannot be read (the message never holds its value)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class SubscriptionRecord:
    """A subscriptions-topic record as it travels: times as written, secrets and header values as
    written (sealed, or in clear in format 1). Field types are checked; the values' meaning
    (times, secrets, URL) is the subscriptions stage's to read."""

    id: str
    tenant_id: str
    url: str
    events: tuple[str, ...]
    status: str
    secrets: tuple[Any, ...]  # {"secret": …, "expires_at": …} each, unchecked: opening them checks them
    headers: dict[str, str]
    description: str
    created_at: str
    updated_at: str
    version: int
    format: int = SUBSCRIPTION_WIRE_FORMAT

    def to_doc(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "id": self.id,
            "tenant_id": self.tenant_id,
            "url": self.url,
            "events": list(self.events),
            "status": self.status,
            "secrets": list(self.secrets),
            "headers": dict(self.headers),
            "description": self.description,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "version": self.version,
        }


def encode_subscription(record: SubscriptionRecord) -> tuple[bytes, bytes]:
    """(key, value) of the record."""
    return record.id.encode("utf-8"), json.dumps(record.to_doc(), separators=(",", ":"), sort_keys=True).encode("utf-8")


def decode_subscription(key: bytes, value: bytes) -> SubscriptionRecord:
    """The record a (key, value) pair carries; ``WireFormatError`` naming the problem, and never
    any other exception, when it is unreadable."""
    try:
        return _decode_subscription(key, value)
    except WireFormatError:
        raise
    except RecursionError:  # json.loads on a value nested ~1,000 levels deep
        raise WireFormatError("the value is nested too deeply") from None
    except KeyError as exc:
        raise WireFormatError(f"field {str(exc.args[0])[:40]!r} is missing") from None
    except Exception:
        # Not the exception's text: it could quote a value, and values include secrets.
        raise WireFormatError("a field has the wrong type or value") from None


def _decode_subscription(key: bytes, value: bytes) -> SubscriptionRecord:
    try:
        sub_id = key.decode("utf-8")
        doc = json.loads(value)
    except (UnicodeDecodeError, ValueError, AttributeError, TypeError):
        raise WireFormatError("the key or value is not UTF-8 JSON") from None
    if not isinstance(doc, dict):
        raise WireFormatError("the value is not a JSON object")
    wire_format = doc.get("format", SUBSCRIPTION_CLEAR_WIRE_FORMAT)
    if type(wire_format) is not int or wire_format not in (SUBSCRIPTION_WIRE_FORMAT, SUBSCRIPTION_CLEAR_WIRE_FORMAT):
        raise WireFormatError(f"wire format {str(wire_format)[:20]!r} is not {SUBSCRIPTION_WIRE_FORMAT}")
    record = SubscriptionRecord(
        format=wire_format,
        id=_str(doc["id"]),
        tenant_id=_str(doc["tenant_id"]),
        url=_str(doc["url"]),
        events=tuple(_str(e) for e in _list(doc["events"])),
        status=_str(doc["status"]),
        secrets=tuple(_list(doc["secrets"])),
        headers={_str(k): _str(v) for k, v in (doc.get("headers") or {}).items()},
        description=_str(doc.get("description") or ""),
        created_at=_str(doc["created_at"]),
        updated_at=_str(doc["updated_at"]),
        version=_int(doc["version"]),
    )
    if record.id != sub_id:
        raise WireFormatError("the key is not the id in the value")
    if record.status == "deleted":
        raise WireFormatError("status 'deleted' is never published (a delete is a tombstone)")
    if record.status not in _PUBLISHED_STATUSES:
        raise WireFormatError("a field has the wrong type or value")
    return record


def _list(v: Any) -> list:
    if not isinstance(v, list):
        raise TypeError("not a list")
    return v


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError("not a string")
    return v


def _int(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError("not an integer")
    return v


# ---------------------------------------------------------------------------- the dead-letter topic
# An entry on ``deliveries.dlq`` is one of: a ``DeliveryRecord`` with its attempt history plus
# ``reason`` and ``dead_lettered_at``; an unreadable record set aside with ``reason``
# ("malformed: ...") and its original bytes; or a reference (``ref``: source topic, partition,
# offset and the delivery's ids) with an excerpt, for a record too large to write whole
# ("too_large: ..."). Only the first kind is replayable. Entries are named by where they sit:
# ``<partition>-<offset>``, stable for as long as the topic keeps them.

# dead_lettered_at is whatever the record says: only a Unix time from 1970 to ~5138 is kept
# (datetime cannot hold much more, and one entry's odd number must not break a whole listing)
_MAX_TIMESTAMP = 1e11


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    id: str  # "<partition>-<offset>"
    reason: str
    dead_lettered_at: float | None
    record: DeliveryRecord | None  # None for an unreadable record set aside
    raw: dict
    problem: str | None = None  # why ``record`` is None when the entry looked like a delivery

    @property
    def malformed(self) -> bool:
        return self.record is None

    @property
    def last_error(self) -> str:
        if not self.record or not self.record.attempts:
            return self.reason
        last = self.record.attempts[-1]
        status = last.get("status") or last.get("http_status")
        # masked again for records written before attempt errors were masked where they are made
        return redact_urls(" ".join(str(x) for x in (status, last.get("error")) if x) or self.reason)

    def field(self, name: str):
        """A delivery field of the record, or of the reference a set-aside entry carries."""
        if self.record is not None:
            return getattr(self.record, name)
        ref = self.raw.get("ref")
        value = ref.get(name) if isinstance(ref, dict) else None
        return value if isinstance(value, str) else None

    def summary(self) -> dict:
        r = self.record
        return {
            "id": self.id,
            "reason": self.reason,
            "dead_lettered_at": _iso(self.dead_lettered_at),
            "delivery_id": self.field("delivery_id"),
            "tenant_id": self.field("tenant_id"),
            "subscription_id": self.field("subscription_id"),
            "event_type": self.field("event_type"),
            "event_id": self.field("event_id"),
            # the history is bounded (first and last attempts): the count is the record's own
            "attempts": max(r.attempt, len(r.attempts)) if r else 0,
            "last_error": self.last_error,
        }


def decode_dead_letter(partition: int, offset: int, value: bytes | None,
                       decode_record: Callable[[bytes], DeliveryRecord]) -> DeadLetter:
    """The entry at ``partition``/``offset``, whatever lies there. ``decode_record`` is the
    delivery worker's own reader (a ``ValueError`` names what is wrong), so an entry the worker
    would refuse is never taken for a replayable delivery."""
    entry_id = f"{partition}-{offset}"
    try:
        raw = orjson.loads(value) if value is not None else {}
        if not isinstance(raw, dict):
            raise ValueError("not an object")
    except (ValueError, orjson.JSONDecodeError):
        return DeadLetter(entry_id, "unreadable dead-letter record", None, None, {})
    record = problem = None
    if "delivery_id" in raw:
        try:
            record = decode_record(value)
        except ValueError as exc:
            problem = str(exc)
    return DeadLetter(entry_id, str(raw.get("reason") or "unknown")[:1000], _timestamp(raw.get("dead_lettered_at")), record, raw, problem)


def _timestamp(value) -> float | None:
    if type(value) not in (int, float) or not 0 <= value <= _MAX_TIMESTAMP:  # also NaN: every comparison is false
        return None
    return float(value)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OverflowError, OSError, ValueError):  # never in range after _timestamp; a listing must not fail on one
        return None
