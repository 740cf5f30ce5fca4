"""Wire formats of the records the pipeline writes between its own stages.

A ``DeliveryRecord`` is one (event, endpoint) pair on the ``deliveries`` topic, keyed by the
subscription id. It never carries a secret: the delivery worker looks the signing secrets up in
its own view of the subscriptions topic. ``delivery_id`` is derived from the event id and the
subscription id, so every copy of the same delivery (a re-processed event after a crash, a
retry, a replay) carries the same ``webhook-id`` and receivers can drop duplicates.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import time
import uuid
from typing import Any

import orjson

from hookstream.core.redact import redact_urls
from hookstream.core.time import format_unix

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
        """A record from values already checked (``decode_record``), every field
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


# --------------------------------------------------------------------------- reading a DeliveryRecord
class MalformedRecord(ValueError):
    """A delivery record that cannot be read; the message is the reason (never the value)."""


_STR_FIELDS = ("delivery_id", "subscription_id", "tenant_id", "event_id", "event_type", "occurred_at")
# the most characters each may hold: the attempt log's columns (subscription and delivery ids 64,
# as in the store; tenant, event id and type 128, as the envelope's schema allows; a unit test
# holds these to ``delivery.attempt_log.AttemptRow``'s columns), and 64 for occurred_at. A longer
# one is no record of ours, and unbounded it would make every key and reference too large to produce.
MAX_CHARS = dict(zip(_STR_FIELDS, (64, 64, 128, 128, 128, 64)))
_MAX_CHARS = tuple(MAX_CHARS.values())
MAX_REPLAY_OF_CHARS = 128


def decode_record(value: bytes | None) -> DeliveryRecord:
    """A ``DeliveryRecord`` from the wire, or ``MalformedRecord`` naming the first problem.

    Every record the delivery worker reads goes through here, so the checks are written for speed:
    orjson returns exact ``dict``/``list``/``str``/``int``/``float`` objects, so ``type(x) is T``
    is the same test as ``isinstance`` (and keeps ``bool`` out of the numbers), and the record is
    made with ``DeliveryRecord.checked`` (no keyword ``__init__`` of a frozen dataclass)."""
    if value is None:
        raise MalformedRecord("the record has no value")
    try:
        raw = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise MalformedRecord("the value is not JSON") from None
    if type(raw) is not dict:
        raise MalformedRecord("the value is not a JSON object")
    get = raw.get
    strs = [get(name) for name in _STR_FIELDS]
    for name, v, most in zip(_STR_FIELDS, strs, _MAX_CHARS):
        if type(v) is not str or not v:
            raise MalformedRecord(f"{name} is missing or not a non-empty string")
        if len(v) > most:
            raise MalformedRecord(f"{name} has {len(v)} characters, more than {most}")
    event = get("event")
    if type(event) is not dict:
        raise MalformedRecord("event is missing or not an object")
    attempt = get("attempt", 0)
    if type(attempt) is not int or attempt < 0:
        raise MalformedRecord("attempt is not a non-negative integer")
    attempts = get("attempts") or []
    if type(attempts) is not list or not all(type(a) is dict for a in attempts):
        raise MalformedRecord("attempts is not a list of objects")
    due = get("due_at")
    if due is not None and type(due) is not float and type(due) is not int:
        raise MalformedRecord("due_at is not a number")
    replay = get("replay_of")
    if replay is not None and (type(replay) is not str or len(replay) > MAX_REPLAY_OF_CHARS):
        raise MalformedRecord(f"replay_of is not a string of at most {MAX_REPLAY_OF_CHARS} characters")
    # the id receivers deduplicate on: every writer (fan-out, dlq replay, recovery) derives it from
    # (event id, subscription id), so any other value is a forged or corrupted record, replays too
    if strs[0] != delivery_id(strs[3], strs[1]):
        raise MalformedRecord("delivery_id is not the one event_id and subscription_id give")
    for field, index in (("id", 3), ("tenant_id", 2), ("type", 4)):
        inner = event.get(field)
        if inner is not None and inner != strs[index]:
            raise MalformedRecord(f"event.{field} differs from the record's {_STR_FIELDS[index]}")
    return DeliveryRecord.checked(
        *strs, event, attempt, tuple(attempts),
        float(due) if due is not None else None,
        replay,
    )


# --------------------------------------------------------------------------- dead letters and set-asides
def dead_letter_value(record: DeliveryRecord, reason: str, now: float) -> bytes:
    """The dead-letter record of a delivery: the delivery record with every attempt, plus the final
    reason. ``DeliveryRecord.from_bytes`` reads it back (for replays); it never holds a secret."""
    doc = dataclasses.asdict(record)
    doc["due_at"] = None
    doc["reason"] = reason
    doc["dead_lettered_at"] = round(now, 3)
    return orjson.dumps(doc)


SET_ASIDE_EXCERPT_BYTES = 1024  # what a set-aside record keeps of a value (or key) too large to carry whole
SET_ASIDE_REASON_MAX = 1000  # characters of the reason a set-aside record carries


def set_aside_record(value: bytes | None, reason: str, *, code: str | None, topic: str, partition: int, offset: int,
                     key: bytes | None, value_max: int, key_max: int, now: float | None = None) -> bytes:
    """The one record format for an input record a stage cannot use (the stream worker's bad event
    on ``events.invalid``, the delivery worker's unreadable record on the dead-letter topic): why
    (``reason``, at most ``SET_ASIDE_REASON_MAX`` characters, and its ``code``), where from
    (``topic``, ``partition``, ``offset``), when (``dead_lettered_at``, Unix seconds) and the
    original bytes in base64 (``key_b64``, ``value_b64``, with ``key_bytes``, ``value_bytes``).

    A value over ``value_max`` bytes (or a key over ``key_max``) would make the record too large
    to produce: it is kept as ``value_excerpt_b64`` (its first ``SET_ASIDE_EXCERPT_BYTES``) with
    ``value_b64`` null, and the whole is found by its reference while the source topic retains it.
    """
    record: dict[str, Any] = {
        "reason": reason if len(reason) <= SET_ASIDE_REASON_MAX else reason[: SET_ASIDE_REASON_MAX - 3] + "...",
        "code": code,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "dead_lettered_at": round(time.time() if now is None else now, 3),
    }
    _carry(record, "key", key, key_max)
    _carry(record, "value", value, value_max)
    return orjson.dumps(record)


def set_aside_key(key: bytes | None, key_max: int) -> bytes | None:
    """The Kafka key of a set-aside record: the record's own key, unless over ``key_max``; then its
    SHA-256 (the same key always gets the same digest, so one entity's set-aside records still
    share a partition). The key itself, or its excerpt, is in the record."""
    if key is None or len(key) <= key_max:
        return key
    return b"sha256:" + hashlib.sha256(key).hexdigest().encode()


def _carry(record: dict, name: str, data: bytes | None, limit: int) -> None:
    record[f"{name}_b64"] = None
    record[f"{name}_bytes"] = len(data) if data is not None else None
    if data is not None and len(data) > limit:
        record[f"{name}_excerpt_b64"] = base64.b64encode(data[:SET_ASIDE_EXCERPT_BYTES]).decode()
    elif data is not None:
        record[f"{name}_b64"] = base64.b64encode(data).decode()


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


def decode_dead_letter(partition: int, offset: int, value: bytes | None) -> DeadLetter:
    """The entry at ``partition``/``offset``, whatever lies there. A delivery is read with
    ``decode_record``, the delivery worker's own reader, so an entry the worker would refuse is
    never taken for a replayable delivery (``problem`` says why)."""
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
        except MalformedRecord as exc:
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
        return format_unix(ts)
    except (OverflowError, OSError, ValueError):  # never in range after _timestamp; a listing must not fail on one
        return None
