"""Events a hostile or broken producer can write, against the real stream worker and broker: each
is set aside on events.invalid, the worker stays up, the events behind it are fanned out, and the
committed offsets move past it (so a restart does not meet it again)."""

from __future__ import annotations

import hashlib
import time

import orjson
from confluent_kafka import Consumer, TopicPartition

from hookstream.core.topics import DELIVERIES, INVALID_EVENTS
from hookstream.schemas import Event, encode_event, example
from hookstream.streams.app import group_id
from tests.integration.pipeline import TopicReader, produce, worker
from tests.integration.test_streams_worker import add, cfg, env, pairs, store  # noqa: F401 (fixtures)


def _committed_to_the_end(cfg, base_topic: str, timeout: float = 60.0) -> dict[int, int]:
    """Wait until the stream worker's group has committed every partition of ``base_topic`` up to
    its end; returns the committed offsets (fails after ``timeout`` seconds)."""
    topic = cfg.topic(base_topic)
    consumer = Consumer({"bootstrap.servers": cfg.kafka_bootstrap, "group.id": group_id(cfg), "enable.auto.commit": False})
    try:
        partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        deadline = time.monotonic() + timeout
        while True:
            found = {tp.partition: tp.offset for tp in consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=30)}
            if all(found[p] >= end for p, end in ends.items() if end > 0):
                return found
            assert time.monotonic() < deadline, f"committed {found}, ends {ends}"
            time.sleep(0.5)
    finally:
        consumer.close()


def _set_aside(reader: TopicReader) -> list[tuple[bytes, dict]]:
    return [(m.key(), orjson.loads(m.value())) for m in reader.records]


def test_an_event_with_a_300_kb_key_is_set_aside_under_a_bounded_key_and_the_worker_goes_on(cfg, env, store, tmp_path):
    sub = add(store, cfg, "beta", ["*"])
    key, value = b"k" * 300_000, b"x" * (512 * 1024)  # 824 kB: a producer with default settings writes it
    produce(cfg, "events.invoice", [(key, value)])
    good = Event.new("invoice.sent", "beta", example("invoice.sent"))
    produce(cfg, "events.invoice", [(b"inv_1", encode_event(good))])
    deliveries, invalid = TopicReader(cfg, DELIVERIES), TopicReader(cfg, INVALID_EVENTS)
    with worker(env, ["streams", "worker"], tmp_path / "streams.log") as w:
        invalid.read_until(lambda rs: len(rs) >= 1, 60, what="the set-aside record")
        deliveries.read_until(lambda rs: (good.id, sub) in pairs(rs), 60, what="the delivery of the event behind it")
        _committed_to_the_end(cfg, "events.invoice")
        assert w.alive, w.log()[-3000:]
        assert "stopping the stream worker" not in w.log()
    [(kafka_key, record)] = _set_aside(invalid)
    deliveries.close()
    invalid.close()
    assert kafka_key == b"sha256:" + hashlib.sha256(key).hexdigest().encode()
    assert (record["code"], record["key_bytes"], record["value_bytes"]) == ("too_large", len(key), len(value))


def test_an_event_nested_1000_deep_is_set_aside_and_its_batch_is_fanned_out_and_committed(cfg, env, store, tmp_path):
    sub = add(store, cfg, "beta", ["*"])
    t = "payment.received"
    before = [Event.new(t, "beta", example(t)) for _ in range(5)]
    after = [Event.new(t, "beta", example(t)) for _ in range(5)]
    poison = encode_event(Event.new(t, "acme", example(t)))[:-1] + b',"correlation_id":' + b"[" * 1000 + b"]" * 1000 + b"}"
    key = b"pay_same_partition"  # one partition: the poison sits in the middle of one batch
    produce(cfg, "events.payment", [(key, encode_event(e)) for e in before] + [(key, poison)] + [(key, encode_event(e)) for e in after])
    deliveries, invalid = TopicReader(cfg, DELIVERIES), TopicReader(cfg, INVALID_EVENTS)
    with worker(env, ["streams", "worker"], tmp_path / "streams.log") as w:
        deliveries.read_until(lambda rs: pairs(rs) >= {(e.id, sub) for e in before + after}, 60,
                              what="the deliveries of the events around the poisoned one")
        invalid.read_until(lambda rs: len(rs) >= 1, 30, what="the set-aside record")
        committed = _committed_to_the_end(cfg, "events.payment")
        assert w.alive, w.log()[-3000:]
        log = w.log()
    [(kafka_key, record)] = _set_aside(invalid)
    deliveries.close()
    invalid.close()
    assert kafka_key == key and record["code"] == "too_deep"
    assert record["reason"] == "payment.received: correlation_id is nested more than 32 levels deep (objects and arrays)"
    assert record["offset"] == 5 and max(committed.values()) == 11
    assert "RecursionError" not in log and "Traceback" not in log
