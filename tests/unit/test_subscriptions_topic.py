"""The compacted topic's wire format: round trips, and unreadable records rejected without leaking."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookstream.core.crypto import Keyring, new_key_entry
from hookstream.subscriptions.models import Status, Subscription
from hookstream.core.secrets import Secret
from hookstream.core.wire import WireFormatError
from hookstream.subscriptions.topic import decode, encode, to_wire

KEYRING = Keyring.parse(new_key_entry("t1"))
T0 = datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC)


def make_sub(**kw) -> Subscription:
    fields = dict(
        id="sub_1", tenant_id="acme", url="https://hooks.example.com/in", events=("payment.*", "invoice.created"),
        status=Status.ACTIVE, secrets=(Secret.generate(),), headers={"X-Env": "prod"},
        description="billing", created_at=T0, updated_at=T0, version=1,
    )
    fields.update(kw)
    return Subscription(**fields)


def test_encode_then_decode_gives_the_same_subscription():
    old = Secret.generate().expiring(T0 + timedelta(hours=24))
    sub = make_sub(secrets=(Secret.generate(), old), status=Status.DISABLED, version=7)
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
    assert sub.secrets[0].reveal() not in str(caught.value)


def test_non_json_value_is_rejected():
    with pytest.raises(WireFormatError):
        decode(b"sub_1", b"\xff\xfe not json", KEYRING)


def test_secret_in_a_wrong_typed_field_is_not_quoted_in_the_error():
    secret = Secret.generate().reveal()
    key, value = encode(make_sub(), KEYRING)
    doc = json.loads(value)
    doc["secrets"] = [{"secret": secret, "expires_at": secret}]
    assert secret not in decode(key, json.dumps(doc).encode(), KEYRING).sealed_error  # not sealed: refused
    doc["format"] = 1  # the clear format of before: read, so the bad time is an error
    with pytest.raises(WireFormatError) as caught:
        decode(key, json.dumps(doc).encode(), KEYRING)
    assert secret not in str(caught.value)


def test_secrets_and_header_values_never_travel_in_clear():
    secret = Secret.generate().reveal()
    sub = make_sub(secrets=(Secret.parse(secret),), headers={"Authorization": "Bearer PLANTED-HEADER-VALUE"})
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
    secret = Secret.generate().reveal()
    sub = make_sub(secrets=(Secret.parse(secret),))
    doc = json.loads(encode(sub, KEYRING)[1])
    doc.update(format=1, secrets=[{"secret": secret, "expires_at": None}], headers={"X-Env": "prod"})
    assert decode(b"sub_1", json.dumps(doc).encode(), KEYRING) == sub


# ---------------------------------------------------------------------------- untrusted records (issue 12)
# A record anyone with write access to the topic put there must be a WireFormatError at worst:
# anything else escapes the follower and, the topic being compacted, kills every restart too.
def _doc(**changes) -> dict:
    doc = json.loads(encode(make_sub(), KEYRING)[1])
    doc.update(changes)
    return doc


def _clear_doc(**changes) -> dict:
    return _doc(**{"format": 1, "secrets": [{"secret": Secret.generate().reveal(), "expires_at": None}], "headers": {}, **changes})


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        (_doc(created_at="0001-01-01T00:00:00+01:00"), "time is out of range"),  # before year 1 in UTC
        (_doc(updated_at="9999-12-31T23:59:59-01:00"), "time is out of range"),  # after year 9999 in UTC
        (_clear_doc(secrets=[{"secret": Secret.generate().reveal(), "expires_at": "9999-12-31T23:59:59-01:00"}]), "time is out of range"),
        (_doc(events="payment.*"), "wrong type or value"),  # a string is not a list of filters
        (_doc(secrets={"secret": "x"}), "wrong type or value"),
        (_doc(format=[2]), "wire format"),
    ],
)
def test_a_record_whose_fields_cannot_be_read_is_a_wire_format_error(doc, why):
    with pytest.raises(WireFormatError, match=why):
        decode(b"sub_1", json.dumps(doc).encode(), KEYRING)


def test_a_sealed_expiry_time_out_of_range_is_a_wire_format_error():
    doc = _doc()
    doc["secrets"][0]["expires_at"] = "0001-01-01T00:00:00+01:00"
    with pytest.raises(WireFormatError, match="time is out of range"):
        decode(b"sub_1", json.dumps(doc).encode(), KEYRING)


@pytest.mark.parametrize("value", [b"[" * 100_000, b'{"id": ' * 5_000, b"[" * 2_000 + b"]" * 2_000])
def test_a_value_nested_too_deeply_is_a_wire_format_error(value):
    with pytest.raises(WireFormatError, match="nested too deeply"):
        decode(b"sub_1", value, KEYRING)


@pytest.mark.parametrize(
    "bad",
    ["whsec_c2hvcnQ=", "whsec_not base64!", "sk_" + "A" * 44, "whsec_" + "A" * 100, "", "whsec_"],
)
def test_a_secret_that_cannot_sign_is_marked_on_its_subscription_never_raised(bad):
    # sealed (format 2): it opens, but to something that is not whsec_ + base64 of 24-64 bytes
    sub_doc = _doc(secrets=[{"secret": KEYRING.seal(bad, "subscription/sub_1/secret"), "expires_at": None}])
    clear_doc = _clear_doc(secrets=[{"secret": bad, "expires_at": None}])
    for doc in (sub_doc, clear_doc):
        got = decode(b"sub_1", json.dumps(doc).encode(), KEYRING)
        assert got.secrets == () and dict(got.headers) == {} and got.signing_secrets() == ()
        assert "secret 1 cannot sign" in got.sealed_error and "sub_1" in got.sealed_error
        if bad:
            assert bad not in got.sealed_error.replace("whsec_ ", "")  # the rule names the prefix, never the secret


def test_a_non_string_secret_is_marked_never_raised():
    got = decode(b"sub_1", json.dumps(_clear_doc(secrets=[{"secret": 12345, "expires_at": None}])).encode(), KEYRING)
    assert got.secrets == () and got.sealed_error


# JSON documents of any shape: scalars, lists and objects nested a few levels
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
_FIELDS = ("format", "id", "tenant_id", "url", "events", "status", "secrets", "headers", "description",
           "created_at", "updated_at", "version")


def _decodes_or_wire_format_error(key: bytes, value: bytes) -> None:
    try:
        sub = decode(key, value, KEYRING)
    except WireFormatError:
        return
    assert isinstance(sub, Subscription)


@settings(max_examples=300, deadline=None)
@given(key=st.binary(max_size=40), value=st.binary(max_size=300))
def test_decode_of_arbitrary_bytes_raises_nothing_but_wire_format_error(key, value):
    _decodes_or_wire_format_error(key, value)


@settings(max_examples=300, deadline=None)
@given(doc=_json)
def test_decode_of_arbitrary_json_raises_nothing_but_wire_format_error(doc):
    _decodes_or_wire_format_error(b"sub_1", json.dumps(doc).encode())


@settings(max_examples=500, deadline=None)
@given(field=st.sampled_from(_FIELDS), replacement=_json, clear=st.booleans())
def test_a_valid_record_with_any_field_replaced_raises_nothing_but_wire_format_error(field, replacement, clear):
    doc = _clear_doc() if clear else _doc()
    doc[field] = replacement
    _decodes_or_wire_format_error(b"sub_1", json.dumps(doc).encode())


# any time with any offset, the first and last days of the calendar (where UTC overflows) included
_times = st.one_of(
    st.datetimes(max_value=datetime(1, 1, 2), timezones=st.timezones()),
    st.datetimes(min_value=datetime(9999, 12, 30), timezones=st.timezones()),
    st.datetimes(timezones=st.timezones()),
).map(lambda d: d.isoformat())


@settings(max_examples=300, deadline=None)
@given(
    created=_times | st.text(max_size=30),
    expires=_times | st.none() | st.integers(),
    secret=st.text(max_size=80) | st.binary(min_size=0, max_size=80).map(lambda b: "whsec_" + base64.b64encode(b).decode()),
    url=st.text(max_size=60).map(lambda t: "https://" + t),
)
def test_hostile_times_secrets_and_urls_raise_nothing_but_wire_format_error(created, expires, secret, url):
    doc = _clear_doc(created_at=created, url=url, secrets=[{"secret": secret, "expires_at": expires}])
    _decodes_or_wire_format_error(b"sub_1", json.dumps(doc).encode())
