"""The stream worker at its limits, as a real process against the real broker: events over the
size limit are set aside, and a batch the broker does not acknowledge stops the worker without
committing past it."""

from __future__ import annotations

import base64
import os
import time

import orjson
from confluent_kafka import Consumer, TopicPartition

from hookstream.core.wire import delivery_id
from hookstream.core.topics import DELIVERIES, INVALID_EVENTS
from hookstream.producers import Publisher
from hookstream.schemas import Event, encode_event, example
from hookstream.streams.app import group_id
from hookstream.streams.fanout import EXCERPT_BYTES, INVALID_VALUE_MAX
from tests.integration.pipeline import TopicReader, produce, worker
from tests.integration.test_streams_worker import _unique_ids, add, cfg, env, pairs, publish, store  # noqa: F401 (fixtures)
from tests.sizes import invoice_of_size, limit_message_bytes


def test_events_over_the_size_limit_are_set_aside_as_too_large_and_the_worker_goes_on(cfg, env, store, tmp_path):
    sub = add(store, cfg, "acme", ["*"])
    over = invoice_of_size("acme", 5000)  # valid, but over the 4,096 bytes this worker allows
    huge = os.urandom(INVALID_VALUE_MAX + 10)  # too large even to carry whole on events.invalid
    produce(cfg, "events.invoice", [(b"inv_over", encode_event(over)), (b"inv_huge", huge)])
    good = publish(cfg, [("acme", "invoice.sent"), ("acme", "payment.received")])
    deliveries, invalid = TopicReader(cfg, DELIVERIES), TopicReader(cfg, INVALID_EVENTS)
    with worker({**env, "HOOKSTREAM_MAX_EVENT_BYTES": "4096"}, ["streams", "worker"], tmp_path / "streams.log") as w:
        deliveries.read_until(lambda rs: pairs(rs) >= {(g.id, sub) for g in good}, 60, what="deliveries of the valid events")
        invalid.read_until(lambda rs: len(rs) >= 2, 30, what="set-aside records")
        assert w.alive, w.log()[-3000:]
    records = {base64.b64decode(r["key_b64"]): r for r in (orjson.loads(m.value()) for m in invalid.settle(1.0))}
    delivered = pairs(deliveries.settle(1.0))
    deliveries.close()
    invalid.close()
    assert (over.id, sub) not in delivered  # never fanned out
    assert set(records) == {b"inv_over", b"inv_huge"}
    for key, size in ((b"inv_over", len(encode_event(over))), (b"inv_huge", len(huge))):
        rec = records[key]
        assert rec["code"] == "too_large"
        assert rec["reason"] == f"too_large: the event is {size} bytes, over the limit of 4096 bytes (HOOKSTREAM_MAX_EVENT_BYTES)"
        assert rec["topic"].endswith("events.invoice") and rec["value_bytes"] == size
    assert base64.b64decode(records[b"inv_over"]["value_b64"]) == encode_event(over)
    assert records[b"inv_huge"]["value_b64"] is None
    assert base64.b64decode(records[b"inv_huge"]["value_excerpt_b64"]) == huge[:EXCERPT_BYTES]


def _committed(cfg, topic: str, partitions) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": cfg.kafka_bootstrap, "group.id": group_id(cfg), "enable.auto.commit": False})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=30)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in found}


def _sent(cfg, specs) -> list:
    """Publish and return each event's acknowledged delivery (partition and offset)."""
    with Publisher(cfg) as publisher:
        deliveries = [publisher.send(Event.new(t, tenant, example(t))) for tenant, t in specs]
    return deliveries


def test_a_batch_the_broker_refuses_stops_the_worker_commits_nothing_past_it_and_a_restart_delivers_all(cfg, env, store, tmp_path):
    sub = add(store, cfg, "acme", ["*"])
    reader = TopicReader(cfg, DELIVERIES)
    before = _sent(cfg, [("acme", "payment.received")] * 200)
    with worker(env, ["streams", "worker"], tmp_path / "w1.log") as w1:
        reader.read_until(lambda rs: set(_unique_ids(rs)) >= {delivery_id(d.event_id, sub) for d in before}, 60,
                          what="deliveries before the fault")
        # the fault: from now on the broker refuses every record batch written to `deliveries`
        limit_message_bytes(cfg, cfg.topic(DELIVERIES), 128)
        gap = _sent(cfg, [("acme", "payment.received")] * 200)
        deadline = time.monotonic() + 120
        while w1.alive and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not w1.alive, "the worker went on after the broker refused its delivery records"
        assert w1.proc.returncode == 1, w1.log()[-3000:]
    log = w1.log()
    [line] = [x for x in log.splitlines() if "stopping the stream worker:" in x]
    assert "refused by the broker" in line and "Message size too large" in line, line
    assert "Traceback" not in log and "never retrieved" not in log, log[-3000:]

    # no offset past an unacknowledged event: every gap event's offset is still ahead of the commit
    topic = cfg.topic("events.payment")
    first_gap: dict[int, int] = {}
    for d in gap:
        first_gap[d.partition] = min(d.offset, first_gap.get(d.partition, d.offset))
    committed = _committed(cfg, topic, first_gap)
    for partition, offset in first_gap.items():
        assert committed[partition] <= offset, (partition, committed[partition], offset)

    limit_message_bytes(cfg, cfg.topic(DELIVERIES), None)  # the broker takes them again
    after = _sent(cfg, [("acme", "payment.received")] * 50)
    want = {delivery_id(d.event_id, sub) for d in before + gap + after}
    with worker(env, ["streams", "worker"], tmp_path / "w2.log") as w2:
        reader.read_until(lambda rs: set(_unique_ids(rs)) >= want, 90, what="every delivery after the restart")
        assert w2.alive, w2.log()[-3000:]
        assert w2.stop() == 0, w2.log()[-3000:]
    assert set(_unique_ids(reader.settle(1.0))) == want  # nothing lost, nothing foreign
    reader.close()
