"""Issue #12: no record on ``deliveries``, a retry tier or the dead-letter topic stops the delivery
worker, and none is POSTed where it must not go. The real worker process, the real broker, a real
receiver; every bad record is written raw onto the topics."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import time

import orjson
import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from hookstream.core.crypto import load_keyring
from hookstream.core.wire import delivery_id
from hookstream.subscriptions.store import SubscriptionStore
from hookstream.subscriptions.topic import encode
from hookstream.core.topics import DEAD_LETTERS, DELIVERIES, SUBSCRIPTIONS, retry_topic
from tests.integration.delivery_helpers import (  # noqa: F401  (cfg, env, receiver, store are fixtures)
    cfg, cli, env, make_record, receiver, scrape, status, store, subscribe, wait_for,
)
from hookstream.subscriptions.topic import publish_pending
from tests.integration.pipeline import TopicReader, produce, worker

pytestmark = pytest.mark.kafka


def bad_records(good: dict, beta_sub: str) -> dict[str, bytes]:
    """Every kind of record the worker must refuse, by the reason it must give."""
    mismatched = make_record(beta_sub, "acme")  # acme's event naming beta's subscription
    return {
        "the value is not JSON": b"{not json",
        "the value is not a JSON object": b"[1, 2, 3]",
        "tenant_id is missing or not a non-empty string": orjson.dumps({**good, "tenant_id": 42}),
        "attempts is not a list of objects": orjson.dumps({**good, "attempts": "many"}),
        "delivery_id is not the one": orjson.dumps({**good, "delivery_id": "msg_" + "0" * 32}),
        "event.tenant_id differs": orjson.dumps({**good, "event": {**good["event"], "tenant_id": "beta"}}),
        "tenant_mismatch": mismatched.to_bytes(),
    }


def test_bad_records_on_every_topic_are_dead_lettered_and_the_worker_lives(cfg, env, store, receiver, tmp_path):
    good_id, _ = subscribe(store, cfg, "gamma", receiver.route("/good", status(200)))
    beta_id, _ = subscribe(store, cfg, "beta", receiver.route("/beta", status(200)))
    # the store takes this URL (it allows 10/8 here); the worker's policy does not
    lenient = SubscriptionStore.open(cfg.model_copy(update=dict(allowed_networks=(*cfg.allowed_networks, _net("10.0.0.0/8")))))
    private, _ = lenient.add("gamma", "http://10.255.0.1:9/private", ["*"])
    accented, _ = lenient.add("gamma", receiver.route("/accented", status(200)), ["*"])
    owned, _ = lenient.add("gamma", receiver.route("/owned", status(200)), ["*"])
    publish_pending(cfg)
    # the store refuses these headers (the same rules as the worker's): on the topic as an older
    # release or another writer could have put them
    keyring = load_keyring(cfg)
    produce(cfg, SUBSCRIPTIONS, [
        encode(dataclasses.replace(sub, headers=headers, version=sub.version + 1), keyring)
        for sub, headers in ((accented, {"X-Note": "caf\u00e9"}), (owned, {"webhook-version": "2"}))
    ])
    policy = {"url_refused": make_record(private.id, "gamma"), "invalid_header: the value of header X-Note": make_record(accented.id, "gamma"),
              "invalid_header: header webhook-version": make_record(owned.id, "gamma")}

    template = orjson.loads(make_record(good_id, "gamma").to_bytes())
    bad = bad_records(template, beta_id)
    goods = [make_record(good_id, "gamma", n) for n in range(6)]
    tier = retry_topic(1)
    past = time.time() - 1
    dlq = TopicReader(cfg, DEAD_LETTERS)
    with worker(env, ["delivery", "worker", "--metrics-port", "0"], tmp_path / "worker.log") as w:
        wait_for(lambda: "delivery worker ready" in w.log(), 60, "the worker")
        # each bad kind on deliveries and on a retry tier (due), good records between them
        produce(cfg, DELIVERIES, [(b"k", v) for v in bad.values()] + [(r.subscription_id.encode(), r.to_bytes()) for r in goods[:3]]
                + [(r.subscription_id.encode(), r.to_bytes()) for r in policy.values()])
        on_tier = [(b"k", _due(v, past)) for v in bad.values()]
        produce(cfg, tier, on_tier + [(r.subscription_id.encode(), _due(r.to_bytes(), past)) for r in goods[3:]])
        expected = 2 * len(bad) + len(policy)
        docs = [orjson.loads(m.value()) for m in dlq.read_until(lambda rs: len(rs) >= expected, 60, what="every bad record dead-lettered")]
        wait_for(lambda: len(receiver.hits_for("/good")) >= len(goods), 30, "the good records")
        time.sleep(0.5)  # anything wrongly sent would have arrived by now
        assert w.alive, w.log()[-3000:]
        metrics = scrape(w.log())
        assert w.stop() == 0, w.log()[-3000:]

    assert len(docs) == expected
    reasons = sorted(d["reason"] for d in docs)
    for why in bad:
        assert sum(why in r for r in reasons) == 2, (why, reasons)  # once from deliveries, once from the tier
    for why, rec in policy.items():
        [doc] = [d for d in docs if d.get("delivery_id") == rec.delivery_id]
        assert doc["reason"].startswith(why.split(":")[0]) and why.split(": ", 1)[-1] in doc["reason"], doc["reason"]
    assert "caf\u00e9" not in json.dumps(docs, ensure_ascii=False)  # a header value is never echoed
    # the good records were delivered once each; nothing bad reached any endpoint
    assert sorted(h.headers["webhook-id"] for h in receiver.hits_for("/good")) == sorted(r.delivery_id for r in goods)
    assert receiver.hits_for("/beta") == receiver.hits_for("/accented") == receiver.hits_for("/owned") == []
    assert 'webhook_dead_letters_total{event="invoice.sent",reason="tenant_mismatch",tenant_id="acme"} 2.0' in metrics
    assert 'webhook_dead_letters_total{event="invoice.sent",reason="url_refused",tenant_id="gamma"} 1.0' in metrics
    assert 'webhook_dead_letters_total{event="invoice.sent",reason="invalid_header",tenant_id="gamma"} 2.0' in metrics
    assert "hookstream_delivery_malformed_total 12.0" in metrics
    assert 'webhook_deliveries_total{event="invoice.sent",status="succeeded",tenant_id="gamma"} 6.0' in metrics
    dlq.close()

    # the same bad bytes on the dead-letter topic itself: listing and replaying go through them
    produce(cfg, DEAD_LETTERS, [(b"k", v) for v in bad.values()] + [(b"k", b"\x00\xff")])
    listed = cli(env, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    entries = json.loads(listed.stdout)
    assert len(entries) == len(docs) + len(bad) + 1
    replay = cli(env, "dlq", "replay", "--yes", "--json")
    assert replay.returncode == 0, replay.stderr
    report = json.loads(replay.stdout)
    # only the dead letters refused by the endpoint's policy come back (once it is fixed, they can go)
    fixable = {e["id"] for e in entries if e["reason"].startswith(("url_refused", "invalid_header"))}
    assert len(fixable) == len(policy) and set(report["replayed"]) == fixable and report["failed"] == {}
    why = report["not_replayable"]
    assert len(why) == len(entries) - len(policy)
    assert sum("delivery_id is not the one" in w for w in why.values()) == 3  # the two set aside + the raw one
    assert sum(w.startswith("tenant_mismatch") for w in why.values()) == 3  # the two dead letters + the raw record


def _due(value: bytes, due_at: float) -> bytes:
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    if isinstance(doc, dict):
        doc["due_at"] = due_at
        return orjson.dumps(doc)
    return value


def _net(cidr: str):
    import ipaddress

    return ipaddress.ip_network(cidr)


def test_a_forward_too_large_for_the_retry_topic_is_set_aside_by_reference(cfg, env, store, receiver, tmp_path):
    down_id, _ = subscribe(store, cfg, "acme", receiver.route("/down", status(500)))
    ok_id, _ = subscribe(store, cfg, "acme", receiver.route("/ok", status(200)))
    tiers = [cfg.topic(retry_topic(n)) for n in range(1, len(cfg.retry_schedule) + 1)]
    admin = AdminClient({"bootstrap.servers": cfg.kafka_bootstrap})
    small = [ConfigResource(ConfigResource.Type.TOPIC, tier, incremental_configs=[
        ConfigEntry("max.message.bytes", "16384", incremental_operation=AlterConfigOpType.SET)]) for tier in tiers]
    for future in admin.incremental_alter_configs(small).values():
        future.result(30)
    big = make_record(down_id, "acme")
    # incompressible data (the producer compresses with lz4): fits `deliveries`, not the tier
    blob = base64.b64encode(os.urandom(30_000)).decode()
    big = dataclasses.replace(big, event={**big.event, "data": {**big.event["data"], "blob": blob}})
    dlq = TopicReader(cfg, DEAD_LETTERS)
    with worker(env, ["delivery", "worker", "--metrics-port", "0"], tmp_path / "worker.log") as w:
        produce(cfg, DELIVERIES, [(down_id.encode(), big.to_bytes())])
        [msg] = dlq.read_until(lambda rs: len(rs) >= 1, 60, what="the reference")
        after = make_record(ok_id, "acme")
        produce(cfg, DELIVERIES, [(ok_id.encode(), after.to_bytes())])
        wait_for(lambda: len(receiver.hits_for("/ok")) == 1, 30, "a delivery after the refused forward")
        assert w.alive, w.log()[-3000:]
        metrics = scrape(w.log())
        assert w.stop() == 0, w.log()[-3000:]
    dlq.close()
    doc = orjson.loads(msg.value())
    assert doc["reason"].startswith("too_large: the record for "), doc["reason"]
    assert doc["reason"].split()[4] in tiers and "was refused" in doc["reason"]
    assert doc["ref"]["topic"] == cfg.topic(DELIVERIES) and doc["ref"]["delivery_id"] == big.delivery_id
    assert doc["ref"]["event_id"] == big.event_id and isinstance(doc["ref"]["offset"], int)
    assert doc["value_bytes"] > 30_000 and len(doc["excerpt"]) <= 1024 and len(msg.value()) < 4096
    assert len(receiver.hits_for("/down")) == 1
    assert 'webhook_dead_letters_total{event="invoice.sent",reason="too_large",tenant_id="acme"} 1.0' in metrics
    # `dlq list` shows the reference under its delivery's ids
    listed = json.loads(cli(env, "dlq", "list", "--tenant", "acme", "--json").stdout)
    assert [(e["delivery_id"], e["reason"][:9]) for e in listed] == [(big.delivery_id, "too_large")]


def test_a_600_kB_subscription_id_is_set_aside_and_nothing_waits_behind_it(cfg, env, store, receiver, tmp_path):
    """The reviewer's record (issue #12): an unknown 600 kB subscription id used to be forwarded to
    a retry tier keyed by that id; librdkafka counts the key against message.max.bytes, refused it
    and its reference (same key), and the worker stopped on it at every restart."""
    healthy, _ = subscribe(store, cfg, "beta", receiver.route("/ok", status(200)))
    doc = orjson.loads(make_record(healthy, "acme").to_bytes())
    big = "s" * 600_000
    doc.update(subscription_id=big, delivery_id=delivery_id(doc["event_id"], big))
    doc["event"].pop("tenant_id", None)
    good = make_record(healthy, "beta")
    dlq = TopicReader(cfg, DEAD_LETTERS)
    with worker(env, ["delivery", "worker", "--metrics-port", "0"], tmp_path / "worker.log") as w:
        # one partition, the big record first: the healthy one is behind it
        produce(cfg, DELIVERIES, [(b"same", orjson.dumps(doc)), (b"same", good.to_bytes())])
        [msg] = dlq.read_until(lambda rs: len(rs) >= 1, 60, what="the big record set aside")
        wait_for(lambda: len(receiver.hits_for("/ok")) == 1, 30, "the healthy tenant's delivery")
        assert w.alive, w.log()[-3000:]
        assert w.stop() == 0, w.log()[-3000:]
    dlq.close()
    assert orjson.loads(msg.value())["reason"] == "malformed: subscription_id has 600000 characters, more than 64"
    assert len(msg.key()) <= 1024 and len(msg.value()) < 1_000_000
