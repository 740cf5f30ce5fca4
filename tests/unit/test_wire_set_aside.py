"""hookstream.core.wire: the one set-aside record format (the stream worker's bad event on
events.invalid, the delivery worker's unreadable record on the dead-letter topic), and the delivery
record's character limits held to the attempt log's columns."""

import base64

import orjson

from hookstream.core.settings import Settings
from hookstream.core.wire import MAX_CHARS, set_aside_record
from hookstream.delivery.attempt_log import AttemptRow
from hookstream.core.wire import decode_dead_letter as decode
from hookstream.streams.fanout import invalid_record
from tests.fakes import FakeMessage, FakeProducer


def test_the_record_limits_are_the_attempt_log_columns():
    for name, most in MAX_CHARS.items():
        if name != "occurred_at":
            assert AttemptRow.__table__.c[name].type.length == most, name


def _delivery_set_aside(value: bytes, key: bytes) -> dict:
    from hookstream.delivery.offsets import PartitionOffsets
    from hookstream.delivery.transport import HttpResponse, MockTransport
    from hookstream.delivery.worker import Worker

    producer = FakeProducer()
    w = Worker(Settings(topic_prefix="t."), table=None, engine=None, producer=producer,
               transport=MockTransport(lambda *_: HttpResponse(200)))
    part = PartitionOffsets()
    part.take(7)
    w._set_aside(FakeMessage("t.deliveries", 2, 7, key, value), "the value is not JSON", part, 7)
    producer.poll(0)
    (topic, _key, doc), = producer.produced
    assert topic == "t.deliveries.dlq"
    return orjson.loads(doc)


def test_both_workers_set_aside_in_the_same_format():
    from_streams = orjson.loads(invalid_record(b"{not json", "not_json: the value is not JSON", topic="t.events.payment",
                                               partition=2, offset=7, key=b"k", code="not_json"))
    from_delivery = _delivery_set_aside(b"{not json", b"k")
    assert set(from_streams) == set(from_delivery) == {
        "reason", "code", "topic", "partition", "offset", "dead_lettered_at", "key_b64", "key_bytes", "value_b64", "value_bytes",
    }
    assert from_delivery["code"] == "malformed" and from_delivery["reason"] == "malformed: the value is not JSON"
    assert base64.b64decode(from_delivery["value_b64"]) == b"{not json" and from_delivery["value_bytes"] == 9
    # the dead-letter tools read it: its reason and time, and no delivery record in it
    letter = decode(0, 1, orjson.dumps(from_delivery))
    assert letter.reason == "malformed: the value is not JSON" and letter.dead_lettered_at == from_delivery["dead_lettered_at"]


def test_too_large_to_carry_whole_keeps_an_excerpt_and_the_size():
    doc = orjson.loads(set_aside_record(b"v" * 5000, "r" * 2000, code="too_large", topic="t", partition=0, offset=1,
                                        key=b"k" * 300, value_max=4096, key_max=256, now=12.3456))
    assert doc["value_b64"] is None and doc["value_bytes"] == 5000 and len(base64.b64decode(doc["value_excerpt_b64"])) == 1024
    assert doc["key_b64"] is None and doc["key_bytes"] == 300 and base64.b64decode(doc["key_excerpt_b64"]) == b"k" * 300
    assert len(doc["reason"]) == 1000 and doc["dead_lettered_at"] == 12.346


def test_a_key_too_large_travels_as_its_digest_in_both_workers():
    from hookstream.core.wire import set_aside_key

    key = b"k" * 70_000
    assert set_aside_key(key, 1024) == set_aside_key(bytes(key), 1024) != set_aside_key(key + b"!", 1024)
    assert set_aside_key(key, 1024).startswith(b"sha256:") and set_aside_key(b"short", 1024) == b"short"
    doc = _delivery_set_aside(b"{not json", b"k" * 2000)
    assert doc["key_b64"] is None and doc["key_bytes"] == 2000 and len(base64.b64decode(doc["key_excerpt_b64"])) == 1024
