"""hookstream.core.wire: the subscriptions topic's record as bytes (tests/unit/test_subscriptions_topic.py
covers a ``Subscription`` to and from it, secrets sealed and opened)."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookstream.core.wire import (
    SUBSCRIPTION_CLEAR_WIRE_FORMAT,
    SUBSCRIPTION_WIRE_FORMAT,
    SubscriptionRecord,
    WireFormatError,
    decode_subscription,
    encode_subscription,
)

RECORD = SubscriptionRecord(
    id="sub_1", tenant_id="acme", url="https://hooks.example.com/in", events=("payment.*", "invoice.created"),
    status="active", secrets=({"secret": "hs1:t1:AAAA", "expires_at": None},), headers={"X-Env": "hs1:t1:BBBB"},
    description="billing", created_at="2026-11-28T12:00:00.123456Z", updated_at="2026-11-28T12:00:01.000000Z", version=3,
)


def _value(**changes) -> bytes:
    return json.dumps(RECORD.to_doc() | changes).encode()


def test_a_record_survives_the_wire():
    key, value = encode_subscription(RECORD)
    assert key == b"sub_1"
    assert decode_subscription(key, value) == RECORD


def test_the_value_is_compact_json_with_sorted_keys_and_the_format_first_written():
    _, value = encode_subscription(RECORD)
    doc = json.loads(value)
    assert value == json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    assert doc["format"] == SUBSCRIPTION_WIRE_FORMAT == 2
    assert set(doc) == {"format", "id", "tenant_id", "url", "events", "status", "secrets", "headers", "description",
                        "created_at", "updated_at", "version"}


def test_a_record_without_a_format_is_the_clear_format_of_before_sealing():
    doc = RECORD.to_doc()
    del doc["format"]
    assert decode_subscription(b"sub_1", json.dumps(doc).encode()).format == SUBSCRIPTION_CLEAR_WIRE_FORMAT


def test_unknown_fields_are_ignored_and_missing_optional_ones_default():
    doc = RECORD.to_doc() | {"added_later": [1]}
    del doc["headers"], doc["description"]
    got = decode_subscription(b"sub_1", json.dumps(doc).encode())
    assert got.headers == {} and got.description == "" and got.id == "sub_1"


def test_secrets_travel_as_written_for_the_subscriptions_stage_to_open():
    odd = [{"secret": 12345}, "not an object"]  # opening them is what refuses them
    assert decode_subscription(b"sub_1", _value(secrets=odd)).secrets == tuple(odd)


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        (b"sub_1", b"\xff not json", "not UTF-8 JSON"),
        (b"\xff", _value(), "not UTF-8 JSON"),
        (b"sub_1", b"[1, 2]", "not a JSON object"),
        (b"sub_1", _value(format=3), "wire format '3' is not 2"),
        (b"sub_1", _value(format=True), "wire format"),
        (b"sub_2", _value(), "key is not the id"),
        (b"sub_1", _value(status="deleted"), "never published"),
        (b"sub_1", _value(status="paused"), "wrong type or value"),
        (b"sub_1", _value(version="3"), "wrong type or value"),
        (b"sub_1", _value(version=False), "wrong type or value"),
        (b"sub_1", _value(events="payment.*"), "wrong type or value"),
        (b"sub_1", _value(headers={"X-Env": 1}), "wrong type or value"),
        (b"sub_1", _value(secrets={"secret": "x"}), "wrong type or value"),
        (b"sub_1", b"[" * 100_000, "nested too deeply"),
    ],
)
def test_an_unreadable_record_is_a_wire_format_error_naming_the_problem(key, value, why):
    with pytest.raises(WireFormatError, match=why):
        decode_subscription(key, value)


@pytest.mark.parametrize("field", ["id", "tenant_id", "url", "events", "status", "secrets", "created_at", "updated_at", "version"])
def test_a_missing_field_is_named(field):
    doc = RECORD.to_doc()
    del doc[field]
    with pytest.raises(WireFormatError, match=f"field '{field}' is missing"):
        decode_subscription(b"sub_1", json.dumps(doc).encode())


def test_the_error_never_quotes_a_value():
    planted = "whsec_PLANTED-VALUE"
    for value in (_value(url=[planted]), _value(version=planted), _value(status=planted)):
        with pytest.raises(WireFormatError) as caught:
            decode_subscription(b"sub_1", value)
        assert "PLANTED-VALUE" not in str(caught.value)


@settings(max_examples=300, deadline=None)
@given(key=st.binary(max_size=20), value=st.binary(max_size=200))
def test_any_bytes_decode_or_are_a_wire_format_error(key, value):
    try:
        assert isinstance(decode_subscription(key, value), SubscriptionRecord)
    except WireFormatError:
        pass
