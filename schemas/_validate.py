"""Validation: bytes or an ``Event`` in, a valid ``Event`` (or its bytes) out, ``InvalidEventError`` otherwise.

Each (type, version) schema is compiled once, on first use, by jsonschema-rs (Rust; about a
microsecond per event). Valid events take the fast path (``is_valid``); only a refused event pays
for collecting its errors, which are turned into one line naming the field, e.g.
``payment.received: data.amount must be a non-negative decimal amount as a string ... (got 12.5)``.

Depth: a document nested deeper than ``MAX_DEPTH`` objects/arrays is refused (code ``too_deep``)
before any recursive work on it. orjson reads up to 1,024 levels, jsonschema-rs gives up at about
255 and collecting errors (or looking for the value JSON cannot hold) recursed in Python until
``RecursionError``; the deepest document any schema allows is 4 levels (envelope, ``data``,
``lines``, a line), so 32 refuses nothing valid (a test checks every schema against the bound).
Valid events rarely pay for the walk: ``parse_event`` walks, before validating, only a document
whose bytes hold more than ``MAX_DEPTH`` brackets (counted in C; legitimate events hold 2-6);
``event_from_dict`` only one with a field the envelope does not know (below the envelope every
schema is closed, so a deeper document cannot pass the fast check); and the slow path
(``_refuse``) walks first thing, before collecting errors.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timezone
from typing import Any

import jsonschema_rs
import orjson

from hookstream.schemas._catalog import CURRENT_VERSIONS, EventSchema, get_schema, unknown_type
from hookstream.schemas._envelope import Event, check_ids, format_timestamp
from hookstream.schemas._errors import InvalidEventError

# Which error to name first when there are several: the most basic problem.
_KIND_ORDER = {"required": 0, "type": 1, "additionalProperties": 2, "minLength": 3, "minItems": 4}
_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}
MAX_DEPTH = 32  # objects/arrays nested in one document, the envelope being the first
_ENVELOPE_FIELDS = frozenset({"id", "type", "tenant_id", "occurred_at", "schema_version", "data", "correlation_id"})
_ARTICLE = {"object": "an object", "array": "an array", "string": "a string", "boolean": "a boolean",
            "integer": "an integer", "number": "a number", "null": "null"}


@functools.cache
def _compiled(event_type: str, version: int) -> tuple[EventSchema, Any]:
    schema = get_schema(event_type, version)
    return schema, jsonschema_rs.Draft202012Validator(schema.document(), validate_formats=False)


_READY: dict[tuple[str, int], Any] = {}  # (type, version) -> validator, once a document of it was checked


def _validator(doc: dict[str, Any]) -> Any:
    """The compiled validator for a document's type and version, checking both on first sight."""
    version = doc.get("schema_version")
    if type(version) is int:  # not bool: True == 1 would find version 1
        try:
            return _READY[(doc.get("type"), version)]
        except (KeyError, TypeError):  # TypeError: an unhashable "type"
            pass
    event_type, version = _type_and_version(doc)
    validator = _READY[(event_type, version)] = _compiled(event_type, version)[1]
    return validator


def parse_event(value: bytes | bytearray | memoryview | str | None) -> Event:
    """Parse and validate one event from the wire. Raises ``InvalidEventError`` (and nothing else)."""
    if value is None:
        raise InvalidEventError("no value (a tombstone is not an event)", code="not_json")
    try:
        doc = orjson.loads(value)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise InvalidEventError(f"not JSON: {_one_line(str(exc))}", code="not_json") from None
    if isinstance(value, (bytes, bytearray, str)) and _brackets(value) > MAX_DEPTH:  # else it cannot be that deep
        _check_depth(doc)
    return event_from_dict(doc)


def event_from_dict(doc: Any) -> Event:
    """Validate a decoded JSON document and build the ``Event``."""
    if not isinstance(doc, dict):
        raise InvalidEventError(f"not a JSON object (got {_json_type(doc)})", code="not_object")
    if not _ENVELOPE_FIELDS.issuperset(doc):  # the envelope is open: an unknown field is the one place a valid event nests freely
        _check_depth(doc)
    if not _safe_is_valid(doc):
        _refuse(doc)
    check_ids(doc)
    try:
        occurred_at = datetime.fromisoformat(doc["occurred_at"]).astimezone(timezone.utc)
    except (ValueError, OverflowError):  # RFC 3339's shape but no real moment: a leap second, year 0 in UTC
        raise _envelope_error(doc["type"], "occurred_at", f"is not a valid timestamp (got {_got(doc['occurred_at'])})") from None
    return Event(doc["id"], doc["type"], doc["tenant_id"], occurred_at, doc["schema_version"], doc["data"], doc.get("correlation_id"))


def validate_event(event: Event) -> None:
    """Raise ``InvalidEventError`` unless ``event`` satisfies its type's schema."""
    encode_event(event)


def encode_event(event: Event) -> bytes:
    """Validate ``event`` and return its wire bytes (UTF-8 JSON). Nothing invalid gets through."""
    doc = _envelope_dict(event)
    if not _safe_is_valid(doc):
        _refuse(doc)
    check_ids(doc)
    try:
        return orjson.dumps(doc)
    except TypeError as exc:  # values the schema cannot see, e.g. a str subclass orjson refuses
        raise InvalidEventError(f"{event.type}: not serializable as JSON: {exc}", code="schema", event_type=event.type) from None


def validate_data(event_type: str, data: Any, version: int | None = None) -> None:
    """Raise ``InvalidEventError`` unless ``data`` is a valid ``data`` object for this type."""
    schema = get_schema(event_type, version)
    doc = {"id": "x", "type": event_type, "tenant_id": "x", "occurred_at": "2000-01-01T00:00:00Z",
           "schema_version": schema.version, "data": data}
    if not _safe_is_valid(doc):
        _refuse(doc)


# ----------------------------------------------------------------------------- internals
def _envelope_dict(event: Event) -> dict[str, Any]:
    if not isinstance(event, Event):
        raise InvalidEventError(f"expected an Event (got {type(event).__name__})", code="not_object")
    occurred_at = event.occurred_at
    if isinstance(occurred_at, datetime):
        occurred_at = format_timestamp(occurred_at)
    doc = {"id": event.id, "type": event.type, "tenant_id": event.tenant_id, "occurred_at": occurred_at,
           "schema_version": event.schema_version, "data": event.data}
    if event.correlation_id is not None:
        doc["correlation_id"] = event.correlation_id
    return doc


def _type_and_version(doc: dict[str, Any]) -> tuple[str, int]:
    event_type = doc.get("type")
    if "type" not in doc:
        raise InvalidEventError("type is required", code="unknown_type", field="type")
    if not isinstance(event_type, str) or event_type not in CURRENT_VERSIONS:
        raise unknown_type(event_type)
    if "schema_version" not in doc:
        raise _envelope_error(event_type, "schema_version", "is required")
    version = doc["schema_version"]
    if type(version) is not int:
        raise _envelope_error(event_type, "schema_version", f"must be an integer (got {_got(version)})")
    get_schema(event_type, version)  # refuses versions we do not know
    return event_type, version


def _safe_is_valid(doc: dict[str, Any]) -> bool:
    """The fast check; raises ``InvalidEventError`` only for an unknown type or version."""
    try:
        return _validator(doc).is_valid(doc)
    except (ValueError, TypeError, OverflowError):  # a value JSON cannot hold (Decimal, datetime, huge int)
        return False


def _refuse(doc: dict[str, Any]) -> None:
    """Raise the ``InvalidEventError`` that says why ``doc`` is invalid (the slow path)."""
    _check_depth(doc)  # first: what follows recurses
    event_type, version = _type_and_version(doc)
    schema, validator = _compiled(event_type, version)
    try:
        errors = list(validator.iter_errors(doc))
    except (ValueError, TypeError, OverflowError):  # a value JSON cannot hold (Decimal, datetime, huge int, ...)
        path, value = _first_non_json(doc)
        raise InvalidEventError(
            f"{event_type}: {path} must be a JSON value (got {type(value).__name__}); "
            "money and dates are strings (see `hookstream schemas show`)",
            code="schema", event_type=event_type, field=path,
        ) from None
    if not errors:  # cannot happen unless the two code paths of the validator disagree
        raise InvalidEventError(f"{event_type}: does not match its schema", code="schema", event_type=event_type)
    # envelope before data (an empty tenant matters more than a field), then the most basic problem
    errors.sort(key=lambda e: (bool(e.instance_path) and e.instance_path[0] == "data", _KIND_ORDER.get(e.kind.name, 9), len(e.instance_path)))
    field, problem = _describe(errors[0], schema)
    more = len({f for e in errors for f in _fields_of(e)} - {field})  # other fields with problems
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    code = "schema" if field.startswith("data") else "envelope"
    raise InvalidEventError(f"{event_type}: {field} {problem}{suffix}", code=code, event_type=event_type, field=field)


def _brackets(value: bytes | bytearray | str) -> int:
    """How many objects/arrays the document could hold at most (brackets inside strings count too)."""
    if isinstance(value, str):
        return value.count("{") + value.count("[")
    return value.count(b"{") + value.count(b"[")


def _check_depth(doc: Any) -> None:
    """Raise ``InvalidEventError`` (code ``too_deep``) if ``doc`` nests more than ``MAX_DEPTH``
    objects/arrays. Iterative and stops at the bound, so a self-containing value ends too."""
    stack: list[tuple[Any, int, tuple]] = [(doc, 1, ())]
    while stack:
        node, depth, parts = stack.pop()
        if depth > MAX_DEPTH:
            event_type = doc.get("type") if isinstance(doc, dict) else None
            event_type = event_type if isinstance(event_type, str) and event_type in CURRENT_VERSIONS else None
            # where it starts (data.<field> or the envelope field); the rest of the path is the nesting
            field = _path(list(parts[:2] if parts[:1] == ("data",) else parts[:1])) or "the event"
            where = f"{event_type}: " if event_type else ""
            raise InvalidEventError(f"{where}{field} is nested more than {MAX_DEPTH} levels deep (objects and arrays)",
                                    code="too_deep", event_type=event_type, field=field)
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, (list, tuple)) else ()
        for key, value in items:
            if isinstance(value, (dict, list, tuple)):
                if len(parts) < 2:
                    parts_ = parts + (key if isinstance(key, (str, int)) else repr(key),)
                stack.append((value, depth + 1, parts_ if len(parts) < 2 else parts))


def _fields_of(error: Any) -> list[str]:
    path, kind = list(error.instance_path), error.kind
    if kind.name == "required":
        return [_path(path + [kind.property])]
    if kind.name == "additionalProperties":
        return [_path(path + [name]) for name in kind.unexpected]
    return [_path(path) or "the event"]


def _describe(error: Any, schema: EventSchema) -> tuple[str, str]:
    kind = error.kind
    path = list(error.instance_path)
    name = kind.name
    if name == "required":
        return _path(path + [kind.property]), "is required"
    if name == "additionalProperties":
        return _path(path + [kind.unexpected[0]]), f"is not a field of {schema.type} v{schema.version}"
    field = _path(path) or "the event"
    described = _subschema(schema.document(), list(error.schema_path)[:-1]).get("description")
    if name == "type":
        wanted = described or " or ".join(_ARTICLE.get(t, t) for t in kind.types)
        return field, f"must be {wanted} (got {_got(error.instance)})"
    if name == "minLength" and kind.limit == 1:
        return field, "must not be empty"
    if name == "minItems":
        return field, f"must have at least {kind.limit} item{'s' if kind.limit != 1 else ''}"
    if name == "enum":
        return field, f"must be one of {', '.join(map(str, kind.options))} (got {_got(error.instance)})"
    if described:
        return field, f"must be {described} (got {_got(error.instance)})"
    return field, _one_line(error.message)


def _subschema(document: dict[str, Any], schema_path: list) -> dict[str, Any]:
    node: Any = document
    for part in schema_path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return {}
    return node if isinstance(node, dict) else {}


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")


def _path(parts: list) -> str:
    """``["data", "lines", 0, "sku"]`` -> ``data.lines[0].sku``; odd names quoted: ``data["a b"]``."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif _PLAIN_NAME.fullmatch(p):
            out += f".{p}" if out else p
        else:
            out += f"[{_json_string(p)}]"
    return out


def _first_non_json(value: Any, parts: tuple = ()) -> tuple[str, Any]:
    """The path and value of the first thing in ``value`` JSON cannot hold ("" when there is none)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return _path(list(parts)) or "the event", k
            found = _first_non_json(v, parts + (k,))
            if found[0]:
                return found
        return "", None
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _first_non_json(v, parts + (i,))
            if found[0]:
                return found
        return "", None
    if value is None or type(value) in (str, bool, float) or (type(value) is int and -(2**63) <= value < 2**64):
        return "", None
    return _path(list(parts)) or "the event", value


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _got(value: Any) -> str:
    """A value as the sender wrote it, in JSON terms: null, true, 12.5, "text", an object."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return _json_string(value)
    return _shown(value)


_DEL_AND_C1 = re.compile(r"[\x7f-\x9f]")  # orjson escapes C0 only: these would reach a terminal raw


def _json_string(value: str) -> str:
    text = _DEL_AND_C1.sub(lambda m: f"\\u{ord(m.group()):04x}", orjson.dumps(value[:57]).decode())
    return text if len(value) <= 57 else text[:-1] + '..."'


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def _envelope_error(event_type: str, field: str, problem: str) -> InvalidEventError:
    return InvalidEventError(f"{event_type}: {field} {problem}", code="envelope", event_type=event_type, field=field)
