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
import time
import uuid
from typing import Any

import orjson

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
