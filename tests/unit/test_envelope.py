"""hookstream.delivery.envelope: the webhook body, built once as the exact bytes that are signed and sent."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import standardwebhooks

from hookstream.delivery import envelope
from hookstream.delivery.envelope import payload
from hookstream.delivery.signing import Secret, build_headers
from hookstream.core.errors import ValidationError

AT = dt.datetime(2027, 1, 15, 8, 0, 0, tzinfo=dt.timezone.utc)


def test_public_names_are_exported() -> None:
    assert envelope.__all__ == ["payload"]


def test_payload_is_compact_json_with_type_timestamp_data_in_that_order() -> None:
    body = payload("invoice.paid", AT, {"id": "in_1", "amount": 1200})
    assert body == b'{"type":"invoice.paid","timestamp":"2027-01-15T08:00:00Z","data":{"id":"in_1","amount":1200}}'


def test_payload_timestamp_is_rfc3339_in_utc_with_z() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    body = payload("e", dt.datetime(2027, 1, 15, 9, 0, 0, 123456, tzinfo=paris), {})
    assert b'"timestamp":"2027-01-15T08:00:00.123456Z"' in body


def test_payload_keeps_unicode_as_utf8() -> None:
    assert payload("e", AT, {"name": "Zoë"}).endswith('"data":{"name":"Zoë"}}'.encode())


def test_payload_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        payload("e", dt.datetime(2027, 1, 15, 8, 0, 0), {})


def test_payload_refuses_a_timestamp_that_is_not_a_datetime() -> None:
    with pytest.raises(ValidationError, match="datetime"):
        payload("e", "2027-01-15T08:00:00Z", {})  # type: ignore[arg-type]


@pytest.mark.parametrize("event_type", ["", "   ", None])
def test_payload_refuses_an_empty_event_type(event_type) -> None:
    with pytest.raises(ValidationError, match="event type"):
        payload(event_type, AT, {})


@pytest.mark.parametrize("data", [[1, 2], "text", None])
def test_payload_refuses_data_that_is_not_an_object(data) -> None:
    with pytest.raises(ValidationError, match="JSON object"):
        payload("e", AT, data)


def test_payload_refuses_data_that_is_not_json() -> None:
    with pytest.raises(ValidationError, match="not JSON"):
        payload("e", AT, {"tags": {"a", "b"}})


def test_payload_bytes_are_what_a_receiver_verifies_and_parses() -> None:
    body = payload("invoice.paid", AT, {"id": "in_1"})
    secret = Secret.generate()
    headers = build_headers("msg_1", int(time.time()), body, secret)
    parsed = standardwebhooks.Webhook(secret.reveal()).verify(body, headers)
    assert parsed == {"type": "invoice.paid", "timestamp": "2027-01-15T08:00:00Z", "data": {"id": "in_1"}}
