"""The compacted topic's wire format: round trips, and unreadable records rejected without leaking."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from hookstream.subscriptions.models import Status, Subscription
from hookstream.subscriptions.secrets import SigningSecret, generate_secret
from hookstream.subscriptions.topic import WireFormatError, decode, encode, to_wire

T0 = datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC)


def make_sub(**kw) -> Subscription:
    fields = dict(
        id="sub_1", tenant_id="acme", url="https://hooks.example.com/in", events=("payment.*", "invoice.created"),
        status=Status.ACTIVE, secrets=(SigningSecret(generate_secret()),), headers={"X-Env": "prod"},
        description="billing", created_at=T0, updated_at=T0, version=1,
    )
    fields.update(kw)
    return Subscription(**fields)


def test_encode_then_decode_gives_the_same_subscription():
    old = SigningSecret(generate_secret(), T0 + timedelta(hours=24))
    sub = make_sub(secrets=(SigningSecret(generate_secret()), old), status=Status.DISABLED, version=7)
    key, value = encode(sub)
    assert key == b"sub_1"
    assert decode(key, value) == sub


def test_wire_document_has_the_documented_fields():
    sub = make_sub()
    doc = json.loads(encode(sub)[1])
    assert set(doc) == {
        "format", "id", "tenant_id", "url", "events", "status", "secrets", "headers", "description",
        "created_at", "updated_at", "version",
    }
    assert doc["secrets"] == [{"secret": sub.secrets[0].value, "expires_at": None}]
    assert doc["created_at"] == "2026-11-28T12:00:00.123456Z"
    assert doc == to_wire(sub)


def test_decode_ignores_unknown_fields_for_forward_compatibility():
    key, value = encode(make_sub())
    doc = json.loads(value)
    doc["added_later"] = {"x": 1}
    assert decode(key, json.dumps(doc).encode()) == make_sub(secrets=decode(key, value).secrets)


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda d: d.pop("version"), "'version' is missing"),
        (lambda d: d.update(version="7"), "wrong type"),
        (lambda d: d.update(version=True), "wrong type"),
        (lambda d: d.update(status="deleted"), "never published"),
        (lambda d: d.update(status="paused"), "wrong type or value"),
        (lambda d: d.update(id="sub_2"), "key is not the id"),
        (lambda d: d.update(format=2), "wire format"),
        (lambda d: d.update(created_at="yesterday"), "wrong type or value"),
    ],
)
def test_unreadable_record_is_rejected_naming_the_problem(mutate, why):
    sub = make_sub()
    key, value = encode(sub)
    doc = json.loads(value)
    mutate(doc)
    with pytest.raises(WireFormatError) as caught:
        decode(key, json.dumps(doc).encode())
    assert why in str(caught.value)
    assert sub.secrets[0].value not in str(caught.value)


def test_non_json_value_is_rejected():
    with pytest.raises(WireFormatError):
        decode(b"sub_1", b"\xff\xfe not json")


def test_secret_in_a_wrong_typed_field_is_not_quoted_in_the_error():
    secret = generate_secret()
    key, value = encode(make_sub())
    doc = json.loads(value)
    doc["secrets"] = [{"secret": secret, "expires_at": secret}]
    with pytest.raises(WireFormatError) as caught:
        decode(key, json.dumps(doc).encode())
    assert secret not in str(caught.value)
