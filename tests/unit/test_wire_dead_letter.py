"""hookstream.core.wire: an entry of the dead-letter topic, whatever lies there (what the delivery
worker's reader refuses: tests/unit/test_delivery_dead_letters.py)."""

import orjson
import pytest

from hookstream.core.wire import DeadLetter, decode_dead_letter, delivery_id

GOOD = {
    "delivery_id": delivery_id("ev1", "sub_1"), "subscription_id": "sub_1", "tenant_id": "acme", "event_id": "ev1",
    "event_type": "invoice.sent", "occurred_at": "2026-11-28T12:00:00Z", "event": {"data": {}},
    "attempt": 2, "attempts": [{"at": 1.0, "status": 500, "error": "boom https://user:pw@evil.example/x"}],
    "reason": "retries_exhausted", "dead_lettered_at": 10.0,
}


def test_a_delivery_entry_carries_its_record_and_summary():
    d = decode_dead_letter(3, 7, orjson.dumps(GOOD))
    assert isinstance(d, DeadLetter) and d.id == "3-7" and not d.malformed
    assert d.record.delivery_id == GOOD["delivery_id"] and d.reason == "retries_exhausted"
    summary = d.summary()
    assert summary["dead_lettered_at"] == "1970-01-01T00:00:10.000000Z" and summary["attempts"] == 2
    assert summary["tenant_id"] == "acme" and "pw@" not in summary["last_error"] and "500" in summary["last_error"]


def test_an_entry_the_delivery_reader_refuses_is_no_delivery_and_says_why():
    d = decode_dead_letter(0, 1, orjson.dumps(GOOD | {"subscription_id": "sub_2"}))
    assert d.malformed and "delivery_id is not the one" in d.problem and d.summary()["delivery_id"] is None


def test_an_entry_without_a_delivery_id_is_a_set_aside_record_not_a_broken_delivery():
    d = decode_dead_letter(0, 1, orjson.dumps({"reason": "malformed: not JSON", "value_b64": "AA=="}))
    assert d.malformed and d.problem is None and d.reason == "malformed: not JSON"


def test_an_entry_without_a_value_is_no_delivery():
    d = decode_dead_letter(0, 1, None)
    assert d.malformed and d.problem is None and d.summary()["id"] == "0-1"


@pytest.mark.parametrize("value", [b"", b"\xff", b"[1]", b'"text"'])
def test_bytes_that_are_no_object_are_an_unreadable_entry(value):
    d = decode_dead_letter(0, 1, value)
    assert d.malformed and d.reason == "unreadable dead-letter record" and d.raw == {}


@pytest.mark.parametrize("when", [b"-1", b"1e300", b"1e999", b'"10"', b"true", b"null"])
def test_a_time_no_datetime_holds_is_no_time(when):
    d = decode_dead_letter(0, 1, b'{"reason": "x", "dead_lettered_at": ' + when + b"}")
    assert d.dead_lettered_at is None and d.summary()["dead_lettered_at"] is None


def test_a_long_reason_is_cut():
    d = decode_dead_letter(0, 1, orjson.dumps({"reason": "r" * 5000}))
    assert len(d.reason) == 1000
