"""Event filters: which event types a subscription receives.

A filter is ``*`` (everything), an exact known type (``invoice.created``) or an aggregate
prefix (``payment.*``). ``matches`` is what the stream worker asks for every event; it is pure
and never raises, so a record written by a newer version with a filter we do not know simply
matches nothing through that filter.
"""

from __future__ import annotations

from collections.abc import Iterable

from hookstream.core.errors import ValidationError
from hookstream.schemas import EVENT_TYPES

# The event types the pipeline knows: one list, owned by the event contract.
KNOWN_EVENT_TYPES: tuple[str, ...] = EVENT_TYPES
AGGREGATES: tuple[str, ...] = tuple(dict.fromkeys(t.rsplit(".", 1)[0] for t in KNOWN_EVENT_TYPES))
WILDCARD = "*"
MAX_FILTERS = 50


def matches(filters: Iterable[str], event_type: str) -> bool:
    """True when any filter selects ``event_type``: ``*``, the exact type, or ``<aggregate>.*``."""
    for f in filters:
        if f == WILDCARD or f == event_type:
            return True
        if f.endswith(".*") and event_type.startswith(f[:-1]):
            return True
    return False


def parse_filters(text: str) -> tuple[str, ...]:
    """``"payment.*, invoice.created"`` -> validated, de-duplicated filters (see ``validate_filters``)."""
    return validate_filters(part.strip() for part in text.split(","))


def validate_filters(filters: Iterable[str]) -> tuple[str, ...]:
    """Each filter must be ``*``, a known event type or ``<aggregate>.*``; at least one is needed."""
    out: list[str] = []
    for f in filters:
        if not f:
            raise ValidationError("events: an empty filter is not allowed (check for a stray comma)")
        if f != WILDCARD and f not in KNOWN_EVENT_TYPES and not (f.endswith(".*") and f[:-2] in AGGREGATES):
            raise ValidationError(
                f"events: {f!r} is not an event filter; use '*', a known type ({', '.join(KNOWN_EVENT_TYPES[:2])}, ...) "
                f"or one of {', '.join(a + '.*' for a in AGGREGATES)}"
            )
        if f not in out:
            out.append(f)
    if not out:
        raise ValidationError("events: at least one event filter is required (e.g. 'payment.*' or '*')")
    if len(out) > MAX_FILTERS:
        raise ValidationError(f"events: at most {MAX_FILTERS} filters are allowed, got {len(out)}")
    return tuple(out)
