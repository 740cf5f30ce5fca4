"""The envelope every event travels in, and its ids.

An event id is a UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 bits that are random at
the start of each millisecond and count up within it, so the ids one process makes sort in the
order it made them, and ids from different processes still never collide.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
from datetime import datetime, timezone
from typing import Any

import orjson

from hookstream.core.time import format_time
from hookstream.schemas._catalog import CURRENT_VERSIONS, get_schema
from hookstream.schemas._errors import InvalidEventError

_RAND_BITS = 74
_LOW_62 = (1 << 62) - 1
_VARIANT = 0b10 << 62
_id_lock = threading.Lock()
_last_ms = 0
_last_rand = 0
_ms_prefix = ""  # "tttttttt-tttt-7" of _last_ms


def new_event_id() -> str:
    """A new UUIDv7 as a lower-case string; strictly increasing within this process."""
    global _last_ms, _last_rand, _ms_prefix
    with _id_lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            # the top bit stays clear, leaving 2**73 increments before the counter could overflow
            rand = int.from_bytes(os.urandom(10), "big") >> (80 - _RAND_BITS + 1)
        else:  # same millisecond (or the clock stepped back): count up from the last id
            ms, rand = _last_ms, _last_rand + 1
            if rand >> _RAND_BITS:
                ms, rand = ms + 1, 0
        if ms != _last_ms:
            t = f"{ms:012x}"
            _ms_prefix = f"{t[:8]}-{t[8:]}-7"
        _last_ms, _last_rand = ms, rand
        prefix = _ms_prefix
    # layout: 48 bits ms | version 7 | 12 bits rand | variant 10 | 62 bits rand
    tail = f"{_VARIANT | (rand & _LOW_62):016x}"
    return f"{prefix}{rand >> 62:03x}-{tail[:4]}-{tail[4:]}"


# The envelope's ids (id, tenant_id, correlation_id) are printable ASCII without spaces. The
# published JSON Schemas admit more (``^[^\s]+$`` lets ESC, BEL, DEL and C1 controls through, which
# a terminal acts on when an operator lists dead letters); their patterns stay as published, since
# a tighter pattern is an incompatible change (tests/unit/test_schemas_compat.py), and this rule
# is enforced in code wherever an event is parsed or encoded (README: Events).
ID_FIELDS = ("id", "tenant_id", "correlation_id")
_PRINTABLE_ID = re.compile(r"[\x21-\x7e]{1,128}")


def check_ids(doc: dict[str, Any]) -> None:
    """Raise ``InvalidEventError`` naming the first envelope id that is not 1-128 printable ASCII
    characters (``correlation_id`` may be absent or null). ``doc`` already passed its schema."""
    for field in ID_FIELDS:
        value = doc.get(field)
        if value is not None and not _PRINTABLE_ID.fullmatch(value):
            event_type = doc.get("type")
            raise InvalidEventError(
                f"{event_type}: {field} must be 1-128 printable ASCII characters, no spaces or control characters "
                f"(got {ascii(value[:40])}{'...' if len(value) > 40 else ''})",  # ascii(): no raw control reaches a terminal
                code="envelope", event_type=event_type, field=field,
            )


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and a ``Z``: ``2026-11-28T14:03:11.250000Z``."""
    if moment.tzinfo is not timezone.utc:  # the common case (utc_now()) needs no conversion
        if moment.tzinfo is None:
            raise InvalidEventError("occurred_at must carry a time zone (use UTC)", code="envelope", field="occurred_at")
        try:
            moment = moment.astimezone(timezone.utc)
        except OverflowError:
            raise InvalidEventError("occurred_at is out of range in UTC", code="envelope", field="occurred_at") from None
    return format_time(moment)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """One business event. Build new ones with ``Event.new``; read them with ``parse_event``.

    ``occurred_at`` is an aware UTC datetime; on the wire it is RFC 3339 with ``Z``.
    """

    id: str
    type: str
    tenant_id: str
    occurred_at: datetime
    schema_version: int
    data: dict[str, Any]
    correlation_id: str | None = None

    @classmethod
    def new(
        cls,
        type: str,
        tenant_id: str,
        data: dict[str, Any],
        *,
        correlation_id: str | None = None,
        occurred_at: datetime | None = None,
        schema_version: int | None = None,
    ) -> "Event":
        """A new event with a fresh id, stamped now (unless ``occurred_at`` is given), at the
        type's current schema version. Not validated here: publishing validates."""
        if schema_version is None:
            schema_version = CURRENT_VERSIONS.get(type) or get_schema(type).version  # unknown: InvalidEventError
        return cls(new_event_id(), type, tenant_id, occurred_at or datetime.now(timezone.utc), schema_version, data, correlation_id)

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready values (what ``to_bytes`` serializes)."""
        doc = {
            "id": self.id,
            "type": self.type,
            "tenant_id": self.tenant_id,
            "occurred_at": format_timestamp(self.occurred_at) if isinstance(self.occurred_at, datetime) else self.occurred_at,
            "schema_version": self.schema_version,
            "data": self.data,
        }
        if self.correlation_id is not None:
            doc["correlation_id"] = self.correlation_id
        return doc

    def to_bytes(self) -> bytes:
        """UTF-8 JSON of the event, without validating it (``schemas.encode_event`` validates)."""
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, value: bytes | str) -> "Event":
        """Parse and validate an event; the same as ``parse_event``."""
        from hookstream.schemas._validate import parse_event

        return parse_event(value)
