"""schemas: the contract of hookstream's events.

Twelve event types (``EVENT_TYPES``), each a versioned JSON Schema of its ``data``, inside one
envelope (``Event``: id, type, tenant_id, occurred_at, schema_version, data, correlation_id).
Producers validate with ``encode_event`` before sending; consumers read with ``parse_event``, which
raises ``InvalidEventError`` (with a one-line ``.reason``) for anything it cannot accept, and never
any other exception.
"""

from hookstream.schemas._catalog import (
    CURRENT_VERSIONS,
    ENTITY_FIELDS,
    EVENT_TYPES,
    EventSchema,
    entity_field,
    example,
    get_schema,
    json_schema,
)
from hookstream.schemas._compat import breaking_changes
from hookstream.schemas._envelope import Event, format_timestamp, new_event_id
from hookstream.schemas._errors import InvalidEventError
from hookstream.schemas._validate import encode_event, event_from_dict, parse_event, validate_data, validate_event

__all__ = [
    "CURRENT_VERSIONS",
    "ENTITY_FIELDS",
    "EVENT_TYPES",
    "Event",
    "EventSchema",
    "InvalidEventError",
    "breaking_changes",
    "encode_event",
    "entity_field",
    "event_from_dict",
    "example",
    "format_timestamp",
    "get_schema",
    "json_schema",
    "new_event_id",
    "parse_event",
    "validate_data",
    "validate_event",
]
