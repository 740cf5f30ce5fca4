"""Fan-out, as pure functions: one event and the tenant's subscriptions in, delivery records out.

Kept apart from the Faust app so the rules (same tenant only, active only, filters match) are
tested without a broker, by example and by property.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from hookstream.core.wire import (
    SET_ASIDE_EXCERPT_BYTES,
    SET_ASIDE_REASON_MAX,
    DeliveryRecord,
    delivery_id,
    set_aside_key,
    set_aside_record,
)
from hookstream.subscriptions.filters import matches


class _Subscription(Protocol):
    id: str
    tenant_id: str
    events: tuple[str, ...]

    @property
    def active(self) -> bool: ...


class _Event(Protocol):
    id: str
    type: str
    tenant_id: str
    occurred_at: Any

    def to_dict(self) -> dict[str, Any]: ...


def deliveries_for(event: _Event, envelope: dict[str, Any], subscriptions: Iterable[_Subscription]) -> list[DeliveryRecord]:
    """One record per active subscription of the event's tenant whose filters match its type."""
    out = []
    for sub in subscriptions:
        # the view is looked up by tenant already; checking again costs nothing and makes a
        # cross-tenant delivery impossible even if a lookup were wrong
        if sub.tenant_id != event.tenant_id or not sub.active or not matches(sub.events, event.type):
            continue
        out.append(
            DeliveryRecord(
                delivery_id=delivery_id(event.id, sub.id),
                subscription_id=sub.id,
                tenant_id=event.tenant_id,
                event_id=event.id,
                event_type=event.type,
                occurred_at=envelope["occurred_at"],
                event=envelope,
            )
        )
    return out


# Original bytes kept whole on ``events.invalid`` up to this size: base64 makes 512 KiB into 683
# KiB, which stays under Kafka's default 1 MiB message limit with room for the rest of the record.
INVALID_VALUE_MAX = 512 * 1024
INVALID_KEY_MAX = 64 * 1024  # the same for the key: both together stay under the producer's 1,000,000 bytes
EXCERPT_BYTES = SET_ASIDE_EXCERPT_BYTES  # what a set-aside record keeps of a value (or key) larger than that
REASON_MAX = SET_ASIDE_REASON_MAX  # characters of the reason a set-aside record carries
# What one record (Kafka key + value) may weigh: librdkafka's default message.max.bytes, which
# producer_config keeps, less room for the record's own wire overhead (under 100 bytes). Worst
# case of a set-aside record (tests/unit/test_streams_fanout_limits.py): the key in the record
# and as the Kafka key, the value in base64, a reason of escaped characters: ~860 kB.
RECORD_BYTES_MAX = 1_000_000 - 1024


def invalid_key(key: bytes | None) -> bytes | None:
    """The Kafka key of a set-aside record: the event's own key, unless over ``INVALID_KEY_MAX``;
    then its SHA-256 (``hookstream.core.wire.set_aside_key``)."""
    return set_aside_key(key, INVALID_KEY_MAX)


def invalid_record(value: bytes | None, reason: str, *, topic: str, partition: int, offset: int, key: bytes | None,
                   code: str | None = None) -> bytes:
    """The record set aside on ``events.invalid``: the pipeline's one set-aside format
    (``hookstream.core.wire.set_aside_record``, the delivery worker's for an unreadable record too).

    A value over ``INVALID_VALUE_MAX`` would make the record itself too large for the broker:
    it is kept as ``value_excerpt_b64`` (its first ``EXCERPT_BYTES``) and ``value_bytes``, and the
    whole is found by its reference (topic, partition, offset) while the topic retains it. A key
    over ``INVALID_KEY_MAX`` likewise (``key_excerpt_b64``, ``key_bytes``); send it with
    ``invalid_key(key)`` as its Kafka key, and both together stay under ``RECORD_BYTES_MAX``.
    """
    return set_aside_record(value, reason, code=code, topic=topic, partition=partition, offset=offset, key=key,
                            value_max=INVALID_VALUE_MAX, key_max=INVALID_KEY_MAX)
