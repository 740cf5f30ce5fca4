import dataclasses
import uuid

from hypothesis import given
from hypothesis import strategies as st

from hookstream.core.wire import DeliveryRecord, delivery_id


def test_every_field_survives_the_wire():
    rec = DeliveryRecord(
        delivery_id=delivery_id("e", "s"), subscription_id="s", tenant_id="t", event_id="e",
        event_type="invoice.sent", occurred_at="2026-11-28T00:00:00Z", event={"id": "e", "data": {"n": 1}},
        attempt=3, attempts=({"at": 1.5, "status": 500, "duration_ms": 12},), due_at=99.5, replay_of="dlq-1",
    )
    assert {f.name for f in dataclasses.fields(rec)} <= set(__import__("orjson").loads(rec.to_bytes()))
    assert DeliveryRecord.from_bytes(rec.to_bytes()) == rec


def test_delivery_id_is_stable_and_distinct():
    assert delivery_id("e1", "s1") == delivery_id("e1", "s1")
    assert len({delivery_id("e1", "s1"), delivery_id("e1", "s2"), delivery_id("e2", "s1")}) == 3
    assert delivery_id("e1", "s1").startswith("msg_")


def test_unknown_fields_from_newer_writers_are_ignored():
    raw = DeliveryRecord(delivery_id="msg_x", subscription_id="s", tenant_id="t", event_id="e", event_type="x.y",
                         occurred_at="z", event={}).to_bytes()
    raw = raw[:-1] + b',"added_later":1}'
    assert DeliveryRecord.from_bytes(raw).delivery_id == "msg_x"


@given(st.text(max_size=60), st.text(max_size=60))
def test_delivery_id_is_the_uuid5_of_event_and_subscription(event_id, subscription_id):
    # ids already on the wire (retries, dead letters, receivers' dedup tables) must never change
    expected = uuid.uuid5(uuid.UUID("0f6c7f0a-5d1e-4e0b-9a57-6f9b1c0d2e31"), f"{event_id}\x1f{subscription_id}")
    assert delivery_id(event_id, subscription_id) == "msg_" + expected.hex
    assert uuid.UUID(delivery_id(event_id, subscription_id)[4:]).version == 5
