"""parse_event and encode_event: every refusal is an InvalidEventError whose reason names the field."""

import time
from datetime import datetime, timezone
from decimal import Decimal

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hookstream.schemas import EVENT_TYPES, Event, InvalidEventError, encode_event, example, json_schema, parse_event
from hookstream.schemas._validate import _READY, _compiled


def _valid(event_type="payment.received", **data_changes) -> dict:
    doc = Event.new(event_type, "acme", example(event_type)).to_dict()
    doc["data"].update(data_changes)
    return doc


def _refusal(doc) -> InvalidEventError:
    raw = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    with pytest.raises(InvalidEventError) as info:
        parse_event(raw)
    assert "\n" not in info.value.reason
    return info.value


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b"hello", b'{"a": NaN}'])
def test_bytes_that_are_not_json_are_refused(raw):
    err = _refusal(raw)
    assert err.code == "not_json"
    assert err.reason.startswith("not JSON: ")


def test_a_tombstone_is_refused():
    with pytest.raises(InvalidEventError, match="tombstone"):
        parse_event(None)


@pytest.mark.parametrize("raw, shown", [(b"[]", "array"), (b'"x"', "string"), (b"1", "integer"), (b"null", "null")])
def test_json_that_is_not_an_object_is_refused(raw, shown):
    err = _refusal(raw)
    assert (err.code, err.reason) == ("not_object", f"not a JSON object (got {shown})")


@pytest.mark.parametrize("event_type", ["invoice.paid", "", "PAYMENT.RECEIVED", 7])
def test_unknown_type_is_refused(event_type):
    doc = _valid()
    doc["type"] = event_type
    err = _refusal(doc)
    assert err.code == "unknown_type"
    assert err.reason.startswith("unknown event type")


def test_missing_tenant_is_refused():
    doc = _valid()
    del doc["tenant_id"]
    err = _refusal(doc)
    assert (err.field, err.reason) == ("tenant_id", "payment.received: tenant_id is required")


@pytest.mark.parametrize("tenant", ["", " ", "acme corp", "\t"])
def test_empty_or_blank_tenant_is_refused(tenant):
    doc = _valid()
    doc["tenant_id"] = tenant
    err = _refusal(doc)
    assert err.field == "tenant_id"
    assert err.reason.startswith("payment.received: tenant_id must")


def test_missing_data_field_is_named():
    doc = _valid()
    del doc["data"]["currency"]
    err = _refusal(doc)
    assert (err.code, err.event_type, err.field) == ("schema", "payment.received", "data.currency")
    assert err.reason == "payment.received: data.currency is required"


def test_wrong_type_is_named_with_what_was_expected():
    err = _refusal(_valid(amount=12.5))
    assert err.field == "data.amount"
    assert 'must be a non-negative decimal amount as a string with at most 4 decimals, e.g. "1250.00" (got 12.5)' in err.reason


def test_unknown_data_field_is_refused_by_name():
    err = _refusal(_valid(amout="12.00"))
    assert err.reason == "payment.received: data.amout is not a field of payment.received v1"


def test_odd_field_names_are_quoted_on_one_line():
    err = _refusal(_valid(**{"note\nline": 1}))
    assert err.reason == 'payment.received: data["note\\nline"] is not a field of payment.received v1'


def test_other_fields_with_problems_are_counted_after_the_first():
    doc = _valid(amount=None)
    del doc["data"]["currency"]
    err = _refusal(doc)
    assert err.reason == "payment.received: data.currency is required (and 1 more problem)"


def test_two_rules_broken_by_one_field_count_as_one_problem():
    doc = _valid()
    doc["tenant_id"] = ""  # too short, and not matching the pattern
    assert _refusal(doc).reason == "payment.received: tenant_id must not be empty"


def test_unsupported_schema_version_is_refused():
    doc = _valid()
    doc["schema_version"] = 3
    assert _refusal(doc).reason == "payment.received: unsupported schema_version 3 (known: 1)"
    doc["schema_version"] = "1"
    assert _refusal(doc).reason == 'payment.received: schema_version must be an integer (got "1")'
    doc["schema_version"] = True
    assert _refusal(doc).reason == "payment.received: schema_version must be an integer (got true)"


@pytest.mark.parametrize(
    "stamp",
    ["2026-11-28", "2026-11-28T14:03:11", "28.11.2026 14:03", "2026-11-28T23:59:60Z", "2026-02-30T10:00:00Z",
     "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"],
)
def test_timestamps_other_than_rfc_3339_are_refused(stamp):
    doc = _valid()
    doc["occurred_at"] = stamp
    assert _refusal(doc).field == "occurred_at"


def test_timestamp_with_an_offset_is_read_as_utc():
    doc = _valid()
    doc["occurred_at"] = "2026-11-28T16:03:11.5+02:00"
    assert parse_event(orjson.dumps(doc)).occurred_at == datetime(2026, 11, 28, 14, 3, 11, 500000, tzinfo=timezone.utc)


def test_an_occurred_at_out_of_range_in_utc_is_refused_before_sending():
    from datetime import timedelta

    early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    with pytest.raises(InvalidEventError, match="occurred_at is out of range"):
        encode_event(Event.new("invoice.sent", "acme", example("invoice.sent"), occurred_at=early))


def test_python_values_json_cannot_hold_are_refused_before_sending():
    event = Event.new("payment.received", "acme", {**example("payment.received"), "amount": Decimal("12.50")})
    with pytest.raises(InvalidEventError) as info:
        encode_event(event)
    assert info.value.field == "data.amount"
    event = Event.new("invoice.sent", "acme", {**example("invoice.sent"), "recipient": object()})
    with pytest.raises(InvalidEventError, match="data.recipient must be a JSON value"):
        encode_event(event)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_valid_events_are_encoded_to_the_bytes_that_parse_back(event_type):
    event = Event.new(event_type, "tenant-7", example(event_type))
    assert parse_event(encode_event(event)) == event


def test_each_schema_is_compiled_once():
    _compiled.cache_clear()
    _READY.clear()
    for _ in range(3):
        parse_event(orjson.dumps(_valid()))
    assert _compiled.cache_info().misses == 1


def test_parsing_a_valid_event_takes_microseconds():
    raw = orjson.dumps(_valid("sales_order.created"))
    parse_event(raw)
    start = time.perf_counter()
    for _ in range(2_000):
        parse_event(raw)
    per_event = (time.perf_counter() - start) / 2_000
    assert per_event < 200e-6  # about 10 us here; generous for a busy 2-core machine


# ----------------------------------------------------------------------------- never anything else
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
rfc3339_shaped = st.from_regex(json_schema("invoice.sent")["properties"]["occurred_at"]["pattern"], fullmatch=True)
envelope_keys = st.sampled_from(["id", "type", "tenant_id", "occurred_at", "schema_version", "data", "correlation_id"])


def _parse_or_refuse(raw: bytes) -> None:
    try:
        event = parse_event(raw)
    except InvalidEventError as err:
        assert err.reason and "\n" not in err.reason
    else:
        assert isinstance(event, Event)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_invalid_event_error(raw):
    _parse_or_refuse(raw)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_raises_only_invalid_event_error(value):
    _parse_or_refuse(orjson.dumps(value))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(EVENT_TYPES), st.data())
def test_mutated_valid_events_raise_only_invalid_event_error(event_type, data):
    doc = _valid(event_type)
    target = data.draw(st.sampled_from(["envelope", "data"]))
    if target == "envelope":
        key = data.draw(envelope_keys)
        doc[key] = data.draw(rfc3339_shaped if key == "occurred_at" else json_values)
    else:
        doc["data"][data.draw(st.sampled_from(sorted(doc["data"])) | st.text(max_size=8))] = data.draw(json_values)
    raw = orjson.dumps(doc)
    if data.draw(st.booleans()):  # and some byte-level damage
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw = raw[:pos] + data.draw(st.binary(min_size=1, max_size=3)) + raw[pos + 1:]
    _parse_or_refuse(raw)
