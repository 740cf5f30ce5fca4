"""Publishing to the compacted topic (real broker): every change, rebuilds, failures and repair."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time

import pytest

from hookstream.core.crypto import load_keyring
from hookstream.core.errors import BrokerError, TopicError
from hookstream.subscriptions import topic
from hookstream.subscriptions.store import SubscriptionStore
from hookstream.subscriptions.topic import encode, publish_pending, sync
from hookstream.subscriptions.view import load_table
from tests.integration.subscriptions_helpers import (
    dead_bootstrap,
    ensure_subscriptions_topic,
    produce_raw,
    public_dns,
    read_records,
)
from tests.postgres import as_application_role

pytestmark = pytest.mark.kafka


@pytest.fixture
def store(settings) -> SubscriptionStore:
    ensure_subscriptions_topic(settings)
    return SubscriptionStore.open(settings, resolver=public_dns)


def test_every_change_is_published_keyed_by_id_and_a_delete_is_a_tombstone(settings, store):
    sub, _ = store.add("acme", "https://a.example/1", ["payment.*"])
    publish_pending(settings, engine=store.engine)
    for change in (
        lambda: store.update(sub.id, tenant_id="acme", events=["*"]),
        lambda: store.disable(sub.id, tenant_id="acme"),
        lambda: store.enable(sub.id, tenant_id="acme"),
        lambda: store.rotate_secret(sub.id, tenant_id="acme"),
        lambda: store.delete(sub.id, tenant_id="acme"),
    ):
        change()
        publish_pending(settings, engine=store.engine)
    records = read_records(settings)
    assert {key for key, _ in records} == {sub.id.encode()}
    states = [json.loads(v) for _, v in records[:-1]]
    assert [s["version"] for s in states] == [1, 2, 3, 4, 5]
    assert [s["status"] for s in states] == ["active", "active", "disabled", "active", "active"]
    assert states[1]["events"] == ["*"] and len(states[4]["secrets"]) == 2
    assert records[-1] == (sub.id.encode(), None)
    assert store.unpublished_count() == 0


def test_publish_pending_publishes_nothing_twice(settings, store):
    store.add("acme", "https://a.example/1", ["*"])
    assert len(publish_pending(settings, engine=store.engine).published) == 1
    assert publish_pending(settings, engine=store.engine).published == []
    assert len(read_records(settings)) == 1


@pytest.fixture
def any_db_store(settings, database_url) -> tuple:
    if database_url.startswith("postgresql"):
        # an ordinary role: publishing must bind itself to all tenants to see any row
        database_url = as_application_role(database_url)
    settings = settings.model_copy(update=dict(database_url=database_url))
    ensure_subscriptions_topic(settings)
    return settings, SubscriptionStore.open(settings, resolver=public_dns)


def test_a_fresh_reader_rebuilds_exactly_the_stores_table(any_db_store):
    settings, store = any_db_store
    kept_a, _ = store.add("acme", "https://a.example/1", ["payment.*"], headers={"X-Env": "prod"})
    kept_g, _ = store.add("globex", "https://g.example/1", ["invoice.created"])
    gone, _ = store.add("acme", "https://a.example/2", ["*"])
    store.disable(kept_g.id, tenant_id="globex")
    store.rotate_secret(kept_a.id, tenant_id="acme")
    publish_pending(settings, engine=store.engine)
    store.update(kept_a.id, tenant_id="acme", url="https://a.example/new")
    store.delete(gone.id, tenant_id="acme")
    publish_pending(settings, engine=store.engine)

    table = load_table(settings)
    assert table.snapshot() == {s.id: s for s in store.list_all_tenants()}
    assert gone.id not in table
    for tenant in ("acme", "globex"):
        assert table.for_tenant(tenant) == store.list(tenant_id=tenant)


def test_a_change_that_did_not_reach_kafka_is_kept_pending_and_repaired(settings, store):
    down = settings.model_copy(update=dict(kafka_bootstrap=dead_bootstrap()))
    published, _ = store.add("acme", "https://a.example/1", ["*"])
    publish_pending(settings, engine=store.engine)

    stuck, _ = store.add("acme", "https://a.example/2", ["*"])
    store.delete(published.id, tenant_id="acme")
    with pytest.raises(BrokerError, match="cannot reach Kafka"):
        publish_pending(down, engine=store.engine, timeout=2)
    assert store.get(stuck.id, tenant_id="acme").unpublished and store.unpublished_count() == 2
    assert stuck.id not in load_table(settings)  # the topic really missed it

    report = publish_pending(settings, engine=store.engine)
    assert report.published == [stuck.id] and report.tombstoned == [published.id]
    assert store.unpublished_count() == 0
    assert load_table(settings).snapshot() == {stuck.id: store.get(stuck.id, tenant_id="acme")}


def test_publishing_to_a_missing_topic_says_how_to_create_it(settings, store):
    store.add("acme", "https://a.example/1", ["*"])
    elsewhere = settings.model_copy(update=dict(topic_prefix=settings.topic_prefix + "missing."))
    with pytest.raises(TopicError, match="hookstream topics ensure"):
        publish_pending(elsewhere, engine=store.engine)
    assert store.unpublished_count() == 1


def test_sync_rebuilds_a_lost_topic_and_tombstones_ids_the_store_does_not_know(settings, store, caplog):
    a, _ = store.add("acme", "https://a.example/1", ["*"])
    g, _ = store.add("globex", "https://g.example/1", ["*"])
    publish_pending(settings, engine=store.engine)
    fresh = settings.model_copy(update=dict(topic_prefix=settings.topic_prefix + "rebuilt."))
    ensure_subscriptions_topic(fresh)
    stray = dataclasses.replace(store.get(a.id, tenant_id="acme"), id="sub_stray")
    produce_raw(fresh, [encode(stray, load_keyring(fresh))])

    caplog.set_level(logging.DEBUG)
    report = sync(fresh, engine=store.engine)
    assert sorted(report.published) == sorted([a.id, g.id]) and report.strays == ["sub_stray"]
    assert load_table(fresh).snapshot() == {s.id: s for s in store.list_all_tenants()}
    assert (b"sub_stray", None) in read_records(fresh)
    secret = store.get(a.id, tenant_id="acme").secrets[0].reveal()
    assert secret not in caplog.text



def test_a_slow_publisher_cannot_put_an_older_state_after_a_newer_one(any_db_store, monkeypatch):
    """Publisher A has read version 1 and stalls; a change to version 2 and its publish must wait
    for A, or version 1 would land on the topic after version 2 (and win compaction)."""
    settings, store = any_db_store
    sub, _ = store.add("acme", "https://a.example/1", ["*"])
    real_produce = topic._produce
    stalled = threading.Event()

    def stalling_produce(*args, **kw):
        if threading.current_thread().name == "publisher-a":
            stalled.set()
            time.sleep(1.5)
        return real_produce(*args, **kw)

    monkeypatch.setattr(topic, "_produce", stalling_produce)
    publisher_a = threading.Thread(target=publish_pending, args=(settings,), kwargs={"engine": store.engine}, name="publisher-a")
    publisher_a.start()
    assert stalled.wait(10)
    store.update(sub.id, tenant_id="acme", description="newer")
    publish_pending(settings, engine=store.engine)
    publisher_a.join(30)

    versions = [json.loads(value)["version"] for _, value in read_records(settings)]
    assert versions == sorted(versions) and versions[-1] == 2
    assert load_table(settings).get(sub.id).description == "newer"
