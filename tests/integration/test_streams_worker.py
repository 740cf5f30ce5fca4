"""The Faust fan-out worker as a real process against the real broker."""

from __future__ import annotations

import collections
import time

import orjson
import pytest

from hookstream.core.wire import DeliveryRecord, delivery_id
from hookstream.core.settings import Settings
from hookstream.subscriptions.store import SubscriptionStore
from hookstream.subscriptions.topic import publish_pending
from hookstream.core.topics import DELIVERIES, INVALID_EVENTS
from hookstream.producers import Publisher
from hookstream.schemas import Event, example
from tests.integration.pipeline import TopicReader, produce, worker


@pytest.fixture
def env(loopback_env):
    return loopback_env


@pytest.fixture
def cfg(loopback_settings) -> Settings:
    return loopback_settings


@pytest.fixture
def store(cfg):
    return SubscriptionStore.open(cfg)


def add(store, cfg, tenant, events, *, disabled=False):
    sub, _secret = store.add(tenant, f"http://127.0.0.1:9/{tenant}", events)
    if disabled:
        store.disable(sub.id, tenant_id=tenant)
    publish_pending(cfg)
    return sub.id


def publish(cfg, specs: list[tuple[str, str]]) -> list[Event]:
    """Publish through the producers' real path (validated, idempotent, lz4-compressed)."""
    events = [Event.new(t, tenant, example(t)) for tenant, t in specs]
    with Publisher(cfg) as publisher:
        for ev in events:
            publisher.send(ev)
    return events


def pairs(records) -> set[tuple[str, str]]:
    return {(DeliveryRecord.from_bytes(m.value()).event_id, DeliveryRecord.from_bytes(m.value()).subscription_id) for m in records}


def test_fan_out_follows_tenants_filters_status_and_changes_mid_stream(cfg, env, store, tmp_path):
    s_exact = add(store, cfg, "acme", ["payment.received"])
    s_prefix = add(store, cfg, "acme", ["invoice.*"])
    s_star = add(store, cfg, "acme", ["*"])
    add(store, cfg, "acme", ["*"], disabled=True)
    s_other = add(store, cfg, "globex", ["*"])
    reader = TopicReader(cfg, DELIVERIES)

    with worker(env, ["streams", "worker"], tmp_path / "streams.log") as w:
        first = publish(cfg, [("acme", "payment.received"), ("acme", "payment.failed"), ("acme", "invoice.sent"),
                              ("acme", "customer.created"), ("globex", "payment.received"), ("globex", "sales_order.created")])
        e = {(ev.tenant_id, ev.type): ev.id for ev in first}
        expected = {
            (e["acme", "payment.received"], s_exact), (e["acme", "payment.received"], s_star),
            (e["acme", "payment.failed"], s_star),
            (e["acme", "invoice.sent"], s_prefix), (e["acme", "invoice.sent"], s_star),
            (e["acme", "customer.created"], s_star),
            (e["globex", "payment.received"], s_other), (e["globex", "sales_order.created"], s_other),
        }
        reader.read_until(lambda rs: pairs(rs) >= expected, 60, what="first deliveries")
        assert pairs(reader.settle(1.0)) == expected

        # mid-stream: one subscription added, one deleted; the change applies within 2 s
        s_new = add(store, cfg, "acme", ["customer.*"])
        store.delete(s_star, tenant_id="acme")
        publish_pending(cfg)
        time.sleep(2.0)
        second = publish(cfg, [("acme", "customer.updated"), ("acme", "payment.received"), ("globex", "invoice.created")])
        e2 = {(ev.tenant_id, ev.type): ev.id for ev in second}
        expected2 = expected | {
            (e2["acme", "customer.updated"], s_new),
            (e2["acme", "payment.received"], s_exact),
            (e2["globex", "invoice.created"], s_other),
        }
        reader.read_until(lambda rs: pairs(rs) >= expected2, 30, what="deliveries after the change")
        records = reader.settle(2.0)
        assert w.alive, w.log()[-3000:]
    reader.close()
    assert pairs(records) == expected2
    for m in records:
        rec = DeliveryRecord.from_bytes(m.value())
        assert m.key() == rec.subscription_id.encode()
        assert rec.delivery_id == delivery_id(rec.event_id, rec.subscription_id)
        assert rec.tenant_id == rec.event["tenant_id"]
        assert b"whsec_" not in m.value()


def test_junk_is_set_aside_and_valid_events_behind_it_still_flow(cfg, env, store, tmp_path):
    sub = add(store, cfg, "acme", ["*"])
    bad_schema = orjson.dumps({**Event.new("payment.received", "acme", example("payment.received")).to_dict(), "data": {"amount": 5}})
    no_tenant = orjson.dumps({k: v for k, v in Event.new("invoice.sent", "x", example("invoice.sent")).to_dict().items() if k != "tenant_id"})
    junk = [
        (b"k1", b"\xff\xfe not json at all"),
        (b"k2", b"[1, 2, 3]"),
        (b"k3", orjson.dumps({**Event.new("payment.received", "acme", {}).to_dict(), "type": "payment.teleported"})),
        (b"k4", no_tenant),
        (b"k5", bad_schema),
        (b"k6", None),
    ]
    produce(cfg, "events.payment", junk)
    good = publish(cfg, [("acme", "payment.received"), ("acme", "payment.failed")])
    deliveries, invalid = TopicReader(cfg, DELIVERIES), TopicReader(cfg, INVALID_EVENTS)
    port = free_port()
    with worker(env, ["streams", "worker", "--metrics-port", str(port)], tmp_path / "streams.log") as w:
        deliveries.read_until(lambda rs: pairs(rs) >= {(g.id, sub) for g in good}, 60, what="valid deliveries")
        invalid.read_until(lambda rs: len(rs) >= len(junk), 30, what="set-aside records")
        assert w.alive, w.log()[-3000:]
        metrics = scrape(port)
    assert metrics['hookstream_stream_events_total{event="payment.received"}'] == 1
    assert metrics['hookstream_stream_events_total{event="payment.failed"}'] == 1
    assert metrics['hookstream_stream_deliveries_emitted_total{event="payment.received"}'] == 1
    assert sum(v for k, v in metrics.items() if k.startswith("hookstream_stream_invalid_events_total{")) == len(junk)
    set_aside = [orjson.loads(m.value()) for m in invalid.settle(1.0)]
    deliveries.close()
    invalid.close()
    assert len(set_aside) == len(junk)
    import base64

    originals = {base64.b64decode(r["key_b64"]): r for r in set_aside}
    for key, value in junk:
        rec = originals[key]
        assert rec["reason"], rec
        assert (base64.b64decode(rec["value_b64"]) if rec["value_b64"] is not None else None) == value
    assert "type" in originals[b"k3"]["reason"] and "payment.teleported" in originals[b"k3"]["reason"]
    assert "tenant_id" in originals[b"k4"]["reason"]
    assert "amount" in originals[b"k5"]["reason"] or "data" in originals[b"k5"]["reason"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[str, float]:
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def _unique_ids(records) -> collections.Counter:
    return collections.Counter(DeliveryRecord.from_bytes(m.value()).delivery_id for m in records)


def test_sigkill_mid_stream_loses_no_fan_out(cfg, env, store, tmp_path):
    sub = add(store, cfg, "acme", ["*"])
    events = publish(cfg, [("acme", "payment.received")] * 3000)
    want = {delivery_id(ev.id, sub) for ev in events}
    reader = TopicReader(cfg, DELIVERIES)
    with worker(env, ["streams", "worker"], tmp_path / "w1.log") as w1:
        reader.read_until(lambda rs: len(rs) >= 300, 60, what="the first deliveries")
        w1.kill()
    with worker(env, ["streams", "worker"], tmp_path / "w2.log") as w2:
        reader.read_until(lambda rs: set(_unique_ids(rs)) >= want, 90, what="every delivery after the restart")
        assert w2.alive, w2.log()[-3000:]
    counts = _unique_ids(reader.settle(1.0))
    reader.close()
    assert set(counts) == want  # nothing lost, nothing foreign; duplicates reuse the same id


def test_two_workers_share_partitions_across_a_rebalance(cfg, env, store, tmp_path):
    sub = add(store, cfg, "acme", ["*"])
    reader = TopicReader(cfg, DELIVERIES)
    events = publish(cfg, [("acme", "invoice.created")] * 1000)
    with worker(env, ["streams", "worker"], tmp_path / "w1.log") as w1:
        reader.read_until(lambda rs: len(rs) >= 200, 60, what="deliveries from worker 1")
        with worker(env, ["streams", "worker"], tmp_path / "w2.log") as w2:
            events += publish(cfg, [("acme", "invoice.sent")] * 1000)
            time.sleep(3)  # let the group rebalance onto both members while records flow
            events += publish(cfg, [("acme", "invoice.authorized")] * 1000)
            assert w1.stop() == 0, w1.log()[-3000:]  # a graceful leave: the partitions move to worker 2
            events += publish(cfg, [("acme", "invoice.cancelled")] * 1000)
            want = {delivery_id(ev.id, sub) for ev in events}
            reader.read_until(lambda rs: set(_unique_ids(rs)) >= want, 90, what="every delivery")
            assert w2.alive, w2.log()[-3000:]
    counts = _unique_ids(reader.settle(2.0))
    reader.close()
    assert set(counts) == want
    multiplied = {k: n for k, n in counts.items() if n > 1}
    assert not multiplied, f"{len(multiplied)} delivery ids written more than once across a graceful rebalance"
