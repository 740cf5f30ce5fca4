"""delivery.dead_letters: reading whatever lies on the dead-letter topic, and producing from the tools."""

import orjson
import pytest

from delivery.dead_letters import Filter, decode, produce_one
from hookstream.records import delivery_id
from tests.fakes import FakeProducer

GOOD = {
    "delivery_id": delivery_id("ev1", "sub_1"), "subscription_id": "sub_1", "tenant_id": "acme", "event_id": "ev1",
    "event_type": "invoice.sent", "occurred_at": "2026-11-28T12:00:00Z", "event": {"data": {}},
    "reason": "retries_exhausted", "dead_lettered_at": 10.0,
}


def test_a_dead_letter_reads_back_as_a_delivery():
    d = decode(0, 5, orjson.dumps(GOOD))
    assert d.id == "0-5" and d.record.delivery_id == GOOD["delivery_id"] and d.problem is None
    assert d.summary()["tenant_id"] == "acme" and d.reason == "retries_exhausted"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (orjson.dumps({**GOOD, "delivery_id": "msg_forged"}), "delivery_id is not the one"),
        (orjson.dumps({**GOOD, "attempts": "many"}), "attempts"),
        (orjson.dumps({**GOOD, "tenant_id": 42}), "tenant_id"),
        (orjson.dumps({**GOOD, "event": {"tenant_id": "beta", "data": {}}}), "event.tenant_id differs"),
    ],
)
def test_an_entry_the_worker_would_refuse_is_no_delivery_and_says_why(value, problem):
    d = decode(1, 2, value)
    assert d.record is None and problem in d.problem


@pytest.mark.parametrize("value", [None, b"", b"\x00\xff", b"[1]", b"12", orjson.dumps({"reason": 5, "dead_lettered_at": "x"})])
def test_any_bytes_decode_to_an_entry(value):
    d = decode(0, 1, value)
    assert d.record is None and isinstance(d.reason, str) and d.summary()["id"] == "0-1"
    assert d.dead_lettered_at is None


def test_a_reference_is_listed_and_filtered_under_its_delivery():
    ref = {"reason": "too_large: ...", "dead_lettered_at": 5.0, "value_bytes": 2_000_000, "excerpt": "{",
           "ref": {"topic": "deliveries", "partition": 1, "offset": 9, "event_id": "ev1", "delivery_id": GOOD["delivery_id"],
                   "subscription_id": "sub_1", "tenant_id": "acme", "event_type": "invoice.sent"}}
    d = decode(2, 3, orjson.dumps(ref))
    assert d.record is None and d.summary()["delivery_id"] == GOOD["delivery_id"]
    assert Filter(tenant_id="acme")(d) and not Filter(tenant_id="beta")(d)
    assert Filter(all_tenants=True, event_type="invoice.*")(d) and Filter(all_tenants=True, subscription_id="sub_1")(d)


def test_produce_one_waits_out_a_full_queue():
    producer = FakeProducer(full=3)
    acked = []
    assert produce_one(producer, "t", b"k", b"v", lambda err, msg: acked.append(err)) is None
    producer.flush()
    assert acked == [None] and producer.polls >= 3


def test_produce_one_reports_a_record_the_client_refuses():
    producer = FakeProducer(refuse_keys={b"big"})
    error = produce_one(producer, "t", b"big", b"v", lambda *_: None)
    assert error is not None and "too large" in error.lower()
    assert produce_one(producer, "t", b"ok", b"v", lambda *_: None) is None


def test_produce_one_gives_up_on_a_queue_that_stays_full():
    producer = FakeProducer(full=10**9)
    assert produce_one(producer, "t", b"k", b"v", lambda *_: None, wait=0.2) == "the producer's queue stayed full"

