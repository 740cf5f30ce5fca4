"""hookstream.delivery.dead_letters: reading whatever lies on the dead-letter topic, and producing from the tools."""

import orjson
import pytest

from hookstream.core.kafka import produce_one
from hookstream.core.time import parse_since
from hookstream.core.wire import decode_dead_letter as decode
from hookstream.delivery.dead_letters import Filter, find_any_tenant
from hookstream.core.errors import ValidationError
from hookstream.core.wire import delivery_id
from hookstream.core.settings import Settings
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


@pytest.mark.parametrize("value", [
    None, b"", b"\x00\xff", b"[1]", b"12", orjson.dumps({"reason": 5, "dead_lettered_at": "x"}),
    # finite, but no datetime holds them (OverflowError, OSError) and 1e999 is infinity
    b'{"dead_lettered_at": 1e300}', b'{"dead_lettered_at": -1e18}', b'{"dead_lettered_at": 4611686018427387904}',
    b'{"dead_lettered_at": 1e999}', b'{"dead_lettered_at": -1e999}',
])
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



# dead_lettered_at is whatever the record says: out of range for a datetime must not break a listing
@pytest.mark.parametrize("when", [1e300, -1e18, 2**62, -1, 1e11 + 1, True, "10"])
@pytest.mark.parametrize("shape", ["delivery", "reference", "malformed"])
def test_a_dead_lettered_at_out_of_range_reads_as_unknown(when, shape):
    doc = {"delivery": GOOD, "reference": {"reason": "too_large: x", "ref": {"tenant_id": "acme"}},
           "malformed": {"reason": "malformed: not JSON", "value_b64": "eA=="}}[shape] | {"dead_lettered_at": when}
    d = decode(0, 1, orjson.dumps(doc))
    assert d.dead_lettered_at is None
    assert d.summary()["dead_lettered_at"] is None and d.summary()["id"] == "0-1"
    assert not Filter(all_tenants=True, since=0.0)(d)  # no time: not in any window


@pytest.mark.parametrize("when", [0, 1.5, 1_795_000_000.25, 1e11])
def test_a_dead_lettered_at_in_range_is_kept(when):
    d = decode(0, 1, orjson.dumps(GOOD | {"dead_lettered_at": when}))
    assert d.dead_lettered_at == when and d.summary()["dead_lettered_at"].endswith("Z")


@pytest.mark.parametrize("text", ["99999999999d", "9" * 400 + "h", "99999999999999999999s"])
def test_a_span_reaching_before_year_one_is_a_clear_error(text):
    with pytest.raises(ValidationError, match=f"^--since: '{text[:20]}.*' reaches back before year 1"):
        parse_since(text, name="--since")


@pytest.mark.parametrize("entry", ["2147483648-0", "99999999999-0", "1-9223372036854775808", "1-99999999999999999999", "1-" + "9" * 5000])
def test_a_dead_letter_id_beyond_kafkas_limits_is_a_clear_error(entry):
    # refused before any connection (the settings point nowhere)
    with pytest.raises(ValidationError, match="is not a dead-letter id"):
        find_any_tenant(Settings.from_env({"HOOKSTREAM_KAFKA_BOOTSTRAP": "127.0.0.1:9"}), entry)
