"""Nesting depth: a document deeper than MAX_DEPTH is refused as too_deep, at every entry, before
anything recursive touches it (orjson reads 1,024 levels; collecting errors used to raise
RecursionError out of parse_event and encode_event)."""

import orjson
import pytest

from hookstream.schemas import CURRENT_VERSIONS, EVENT_TYPES, Event, InvalidEventError, encode_event, event_from_dict, example, get_schema, parse_event, validate_data
from hookstream.schemas._validate import _ENVELOPE_FIELDS, MAX_DEPTH


def _doc(event_type="payment.received") -> dict:
    return orjson.loads(encode_event(Event.new(event_type, "acme", example(event_type))))


def _nested_list(levels: int) -> list:
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


def _nested_bytes(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def _wire_with(field: str, raw_value: bytes) -> bytes:
    """The example event with ``field`` (an envelope field) set to raw JSON, as a hostile producer writes it."""
    return orjson.dumps(_doc())[:-1] + b',"' + field.encode() + b'":' + raw_value + b"}"


@pytest.mark.parametrize("levels", [MAX_DEPTH, 100, 254, 256, 1000, 1023])
def test_a_deep_envelope_field_on_the_wire_is_refused_as_too_deep(levels):
    with pytest.raises(InvalidEventError) as info:
        parse_event(_wire_with("correlation_id", _nested_bytes(levels)))  # the envelope is level 1
    assert info.value.code == "too_deep"
    assert info.value.field == "correlation_id"
    assert info.value.reason == f"payment.received: correlation_id is nested more than {MAX_DEPTH} levels deep (objects and arrays)"


@pytest.mark.parametrize("levels", [MAX_DEPTH, 300, 1023])
def test_an_unknown_envelope_field_cannot_smuggle_depth_past_validation(levels):
    # the envelope accepts fields it does not know, so this document is otherwise valid
    with pytest.raises(InvalidEventError) as info:
        parse_event(_wire_with("extra", _nested_bytes(levels)))
    assert (info.value.code, info.value.field) == ("too_deep", "extra")
    doc = _doc()
    doc["extra"] = _nested_list(levels)
    with pytest.raises(InvalidEventError, match="extra is nested more than"):
        event_from_dict(doc)


def test_an_unknown_envelope_field_within_the_bound_is_accepted():
    doc = _doc()
    doc["extra"] = _nested_list(MAX_DEPTH - 1)  # with the envelope: exactly MAX_DEPTH levels
    assert event_from_dict(doc).id == doc["id"]
    assert parse_event(orjson.dumps(doc)).id == doc["id"]


def test_deep_data_is_refused_with_the_data_field_named():
    doc = _doc()
    doc["data"]["reference2"] = "PLACEHOLDER"
    raw = orjson.dumps(doc).replace(b'"PLACEHOLDER"', b'{"a":' + _nested_bytes(998) + b"}")  # orjson writes 255 levels at most
    with pytest.raises(InvalidEventError) as info:
        parse_event(raw)
    assert (info.value.code, info.value.field, info.value.event_type) == ("too_deep", "data.reference2", "payment.received")


def test_a_deep_document_of_unknown_type_is_still_too_deep_not_a_crash():
    with pytest.raises(InvalidEventError) as info:
        parse_event(b'{"type": "nope", "x": ' + _nested_bytes(1000) + b"}")
    assert info.value.code == "too_deep"
    assert info.value.reason.startswith("x is nested more than")
    with pytest.raises(InvalidEventError) as info:
        parse_event(_nested_bytes(1000))
    assert info.value.code == "too_deep"


@pytest.mark.parametrize("levels", [MAX_DEPTH, 1000, 5000])
def test_producers_get_too_deep_for_python_data_not_recursion_error(levels):
    data = dict(example("payment.received"), reference2=_nested_list(levels))
    with pytest.raises(InvalidEventError) as info:
        encode_event(Event.new("payment.received", "acme", data))
    assert (info.value.code, info.value.field) == ("too_deep", "data.reference2")
    with pytest.raises(InvalidEventError, match="too_deep|nested more than"):
        validate_data("payment.received", data)


def test_a_value_that_contains_itself_is_too_deep():
    loop: dict = {}
    loop["self"] = loop
    data = dict(example("payment.received"), reference2=loop)
    with pytest.raises(InvalidEventError) as info:
        encode_event(Event.new("payment.received", "acme", data))
    assert info.value.code == "too_deep"


def test_brackets_inside_strings_are_not_nesting():
    doc = _doc()
    doc["data"]["reference"] = "[{" * 60  # more brackets than MAX_DEPTH, all inside a string
    assert parse_event(orjson.dumps(doc)).data["reference"] == "[{" * 60


def _schema_depth(node: dict, where: str, root: bool = False) -> int:
    """Levels of objects/arrays a schema allows below ``node``; fails on anything free-form below the envelope."""
    assert "$ref" not in node and not any(k in node for k in ("anyOf", "oneOf", "allOf")), where
    types = node.get("type", [])
    types = [types] if isinstance(types, str) else types
    if not types:
        assert "const" in node or "enum" in node, f"{where}: free-form value"
        return 0
    depth = 0
    if "object" in types:
        assert root or node.get("additionalProperties") is False, f"{where}: open object"
        depth = 1 + max((_schema_depth(p, f"{where}.{k}") for k, p in node.get("properties", {}).items()), default=0)
    if "array" in types:
        assert isinstance(node.get("items"), dict), f"{where}: array without items"
        depth = max(depth, 1 + _schema_depth(node["items"], f"{where}[]"))
    return depth


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_schema_nests_well_within_the_bound(event_type):
    for version in range(1, CURRENT_VERSIONS[event_type] + 1):
        document = get_schema(event_type, version).document()
        assert set(document["properties"]) == _ENVELOPE_FIELDS  # what event_from_dict trusts
        assert _schema_depth(document, event_type, root=True) <= 6 < MAX_DEPTH
