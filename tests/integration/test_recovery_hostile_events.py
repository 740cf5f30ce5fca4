"""`replay events` (delivery.recovery.recover) over a window holding an event nested 1,000 deep:
it is counted as invalid and skipped, and the events around it are recovered (it used to abort
with RecursionError)."""

from __future__ import annotations

import time

import orjson

from hookstream.streams.recovery import recover
from hookstream.core.wire import DeliveryRecord, delivery_id
from hookstream.subscriptions.store import SubscriptionStore
from hookstream.subscriptions.topic import publish_pending
from hookstream.core.topics import DELIVERIES, event_topic_for
from hookstream.schemas import Event, encode_event, example
from tests.integration.pipeline import TopicReader, produce


def test_recover_skips_a_deep_event_and_recovers_the_events_around_it(loopback_settings):
    cfg = loopback_settings
    target, _ = SubscriptionStore.open(cfg).add("acme", "http://127.0.0.1:9/a", ["payment.*"])
    publish_pending(cfg)
    since = time.time() - 1
    t = "payment.received"
    before, after = Event.new(t, "acme", example(t)), Event.new(t, "acme", example(t))
    deep = orjson.loads(encode_event(Event.new(t, "acme", example(t))))
    poison = orjson.dumps(deep)[:-1] + b',"correlation_id":' + b"[" * 1000 + b"]" * 1000 + b"}"
    key = b"pay_1"  # one partition, in this order
    produce(cfg, event_topic_for(t), [(key, encode_event(before)), (key, poison), (key, encode_event(after))])
    reader = TopicReader(cfg, DELIVERIES)
    report = recover(cfg, target, since=since)
    got = [DeliveryRecord.from_bytes(m.value()) for m in reader.read_until(lambda rs: len(rs) >= 2, 30)]
    reader.settle(1.0)
    reader.close()
    assert (report.scanned, report.queued, report.skipped_invalid) == (3, 2, 1)
    assert sorted(r.delivery_id for r in got) == sorted(delivery_id(e.id, target.id) for e in (before, after))
