"""The compacted topic's wire format: round trips, and unreadable records rejected without leaking."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from hookstream.crypto import Keyring, new_key_entry
from hookstream.subscriptions.models import Status, Subscription
from hookstream.subscriptions.secrets import SigningSecret, generate_secret
from hookstream.subscriptions.topic import WireFormatError, decode, encode, to_wire

KEYRING = Keyring.parse(new_key_entry("t1"))
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
    key, value = encode(sub, KEYRING)
    assert key == b"sub_1"
    assert decode(key, value, KEYRING) == sub


def test_wire_document_has_the_documented_fields():
    sub = make_sub()
    doc = json.loads(encode(sub, KEYRING)[1])
    assert set(doc) == {
        "format", "id", "tenant_id", "url", "events", "status", "secrets", "headers", "description",
        "created_at", "updated_at", "version",
    }
    assert doc["format"] == 2
    assert [i["expires_at"] for i in doc["secrets"]] == [None]
    assert doc["secrets"][0]["secret"].startswith("hs1:t1:") and list(doc["headers"]) == ["X-Env"]
    assert doc["created_at"] == "2026-11-28T12:00:00.123456Z"
    other = to_wire(sub, KEYRING)  # sealing draws a fresh nonce: equal apart from the sealed values
    assert {k: v for k, v in doc.items() if k not in ("secrets", "headers")} == {
        k: v for k, v in other.items() if k not in ("secrets", "headers")
    }


def test_decode_ignores_unknown_fields_for_forward_compatibility():
    key, value = encode(make_sub(), KEYRING)
    doc = json.loads(value)
    doc["added_later"] = {"x": 1}
    assert decode(key, json.dumps(doc).encode(), KEYRING) == make_sub(secrets=decode(key, value, KEYRING).secrets)


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda d: d.pop("version"), "'version' is missing"),
        (lambda d: d.update(version="7"), "wrong type"),
        (lambda d: d.update(version=True), "wrong type"),
        (lambda d: d.update(status="deleted"), "never published"),
        (lambda d: d.update(status="paused"), "wrong type or value"),
        (lambda d: d.update(id="sub_2"), "key is not the id"),
        (lambda d: d.update(format=3), "wire format"),
        (lambda d: d.update(created_at="yesterday"), "wrong type or value"),
    ],
)
def test_unreadable_record_is_rejected_naming_the_problem(mutate, why):
    sub = make_sub()
    key, value = encode(sub, KEYRING)
    doc = json.loads(value)
    mutate(doc)
    with pytest.raises(WireFormatError) as caught:
        decode(key, json.dumps(doc).encode(), KEYRING)
    assert why in str(caught.value)
    assert sub.secrets[0].value not in str(caught.value)


def test_non_json_value_is_rejected():
    with pytest.raises(WireFormatError):
        decode(b"sub_1", b"\xff\xfe not json", KEYRING)


def test_secret_in_a_wrong_typed_field_is_not_quoted_in_the_error():
    secret = generate_secret()
    key, value = encode(make_sub(), KEYRING)
    doc = json.loads(value)
    doc["secrets"] = [{"secret": secret, "expires_at": secret}]
    assert secret not in decode(key, json.dumps(doc).encode(), KEYRING).sealed_error  # not sealed: refused
    doc["format"] = 1  # the clear format of before: read, so the bad time is an error
    with pytest.raises(WireFormatError) as caught:
        decode(key, json.dumps(doc).encode(), KEYRING)
    assert secret not in str(caught.value)


def test_secrets_and_header_values_never_travel_in_clear():
    secret = generate_secret()
    sub = make_sub(secrets=(SigningSecret(secret),), headers={"Authorization": "Bearer PLANTED-HEADER-VALUE"})
    _, value = encode(sub, KEYRING)
    assert secret.encode() not in value and secret[6:20].encode() not in value
    assert b"PLANTED-HEADER-VALUE" not in value and b"Authorization" in value


def test_a_record_under_an_unknown_key_decodes_without_secrets_naming_the_key_id():
    sub = make_sub(headers={"Authorization": "Bearer PLANTED"})
    key, value = encode(sub, Keyring.parse(new_key_entry("gone")))
    got = decode(key, value, KEYRING)
    assert got.secrets == () and dict(got.headers) == {}
    assert "'gone'" in got.sealed_error and "sub_1" in got.sealed_error
    assert (got.id, got.url, got.version) == (sub.id, sub.url, sub.version)  # the rest is read


def test_an_altered_sealed_value_does_not_open():
    key, value = encode(make_sub(), KEYRING)
    doc = json.loads(value)
    sealed = doc["secrets"][0]["secret"]
    doc["secrets"][0]["secret"] = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    got = decode(key, json.dumps(doc).encode(), KEYRING)
    assert got.secrets == () and "does not open" in got.sealed_error


def test_a_sealed_secret_copied_onto_another_subscription_does_not_open_there():
    _, value = encode(make_sub(), KEYRING)
    doc = json.loads(value)
    key2, value2 = encode(make_sub(id="sub_2"), KEYRING)
    doc2 = json.loads(value2)
    doc2["secrets"] = doc["secrets"]  # the first subscription's secret on the second
    assert decode(key2, json.dumps(doc2).encode(), KEYRING).sealed_error


def test_a_clear_format_1_record_from_before_sealing_is_still_read():
    secret = generate_secret()
    sub = make_sub(secrets=(SigningSecret(secret),))
    doc = json.loads(encode(sub, KEYRING)[1])
    doc.update(format=1, secrets=[{"secret": secret, "expires_at": None}], headers={"X-Env": "prod"})
    assert decode(b"sub_1", json.dumps(doc).encode(), KEYRING) == sub
