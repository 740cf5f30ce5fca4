"""delivery.worker: reading delivery records off the wire, and the dead-letter record."""

import orjson
import pytest

from delivery.worker import MalformedRecord, dead_letter_value, decode_record
from hookstream.records import DeliveryRecord

GOOD = {
    "delivery_id": "msg_1", "subscription_id": "sub_1", "tenant_id": "acme", "event_id": "ev1",
    "event_type": "invoice.sent", "occurred_at": "2026-11-28T12:00:00Z", "event": {"data": {}},
}


def test_a_good_record_round_trips():
    rec = decode_record(orjson.dumps(GOOD))
    assert rec == DeliveryRecord(**GOOD)
    assert decode_record(rec.to_bytes()) == rec


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "no value"),
        (b"\xff not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (orjson.dumps({**GOOD, "delivery_id": ""}), "delivery_id"),
        (orjson.dumps({k: v for k, v in GOOD.items() if k != "tenant_id"}), "tenant_id"),
        (orjson.dumps({**GOOD, "event": "x"}), "event"),
        (orjson.dumps({**GOOD, "attempt": -1}), "attempt"),
        (orjson.dumps({**GOOD, "attempt": True}), "attempt"),
        (orjson.dumps({**GOOD, "attempts": [1]}), "attempts"),
        (orjson.dumps({**GOOD, "due_at": "soon"}), "due_at"),
    ],
)
def test_every_malformed_record_is_named_never_a_crash(value, reason):
    with pytest.raises(MalformedRecord, match=reason):
        decode_record(value)


def test_unknown_fields_are_ignored():
    assert decode_record(orjson.dumps({**GOOD, "future": 1})) == DeliveryRecord(**GOOD)


def test_the_dead_letter_keeps_the_history_and_reads_back_as_a_record():
    rec = DeliveryRecord(**GOOD, attempt=2, attempts=({"attempt": 1, "status": 500}, {"attempt": 2, "status": 500}), due_at=5.0)
    doc = orjson.loads(dead_letter_value(rec, "retries_exhausted", 10.0))
    assert doc["reason"] == "retries_exhausted" and doc["dead_lettered_at"] == 10.0 and doc["due_at"] is None
    assert [a["attempt"] for a in doc["attempts"]] == [1, 2]
    assert DeliveryRecord.from_bytes(dead_letter_value(rec, "x", 1.0)).attempts == rec.attempts


def test_checked_makes_the_same_record_as_the_constructor_and_knows_every_field():
    import dataclasses
    import inspect

    names = [f.name for f in dataclasses.fields(DeliveryRecord)]
    assert list(inspect.signature(DeliveryRecord.checked).parameters) == names
    full = {**GOOD, "attempt": 2, "attempts": ({"attempt": 1},), "due_at": 5.0, "replay_of": "dlq_1"}
    rec = DeliveryRecord.checked(*(full[n] for n in names))
    assert rec == DeliveryRecord(**full) and vars(rec) == vars(DeliveryRecord(**full))
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.attempt = 3
