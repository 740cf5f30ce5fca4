"""Dead-letter tools against the real broker: list and filter, show, replay once, recover a window."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import orjson
import pytest

from hookstream.delivery.dead_letters import Filter, find, find_any_tenant, read, replay
from hookstream.streams.recovery import recover
from hookstream.core.errors import NotFoundError, ValidationError
from hookstream.core.wire import DeliveryRecord, delivery_id
from hookstream.core.settings import Settings
from hookstream.subscriptions.store import SubscriptionStore
from hookstream.subscriptions.topic import publish_pending
from hookstream.core.topics import DEAD_LETTERS, DELIVERIES, ensure_topics, event_topic_for
from hookstream.schemas import Event, example
from tests.integration.pipeline import TopicReader, produce


@pytest.fixture
def env(loopback_env):
    return loopback_env


@pytest.fixture
def cfg(loopback_settings) -> Settings:
    return loopback_settings


def dead(tenant, sub, event_type, reason, at, attempts=2):
    ev = Event.new(event_type, tenant, example(event_type))
    rec = DeliveryRecord(
        delivery_id=delivery_id(ev.id, sub), subscription_id=sub, tenant_id=tenant, event_id=ev.id,
        event_type=event_type, occurred_at=ev.to_dict()["occurred_at"], event=ev.to_dict(), attempt=attempts,
        attempts=tuple({"at": at - 10 + i, "status": 500, "error": None, "duration_ms": 3.0} for i in range(attempts)),
    )
    doc = orjson.loads(rec.to_bytes()) | {"reason": reason, "dead_lettered_at": at}
    return sub.encode(), orjson.dumps(doc), rec


@pytest.fixture
def letters(cfg):
    now = time.time()
    made = [
        dead("acme", "sub_a1", "payment.failed", "exhausted", now - 7200),
        dead("acme", "sub_a1", "invoice.sent", "exhausted", now - 600),
        dead("acme", "sub_a2", "invoice.rejected", "client_error", now - 300, attempts=1),
        dead("globex", "sub_g1", "payment.received", "exhausted", now - 60),
    ]
    malformed = orjson.dumps({"reason": "malformed: not JSON", "topic": "x", "partition": 0, "offset": 1,
                              "key_b64": None, "value_b64": "eA==", "dead_lettered_at": now - 30})
    produce(cfg, DEAD_LETTERS, [(k, v) for k, v, _ in made] + [(None, malformed)])
    return [r for _, _, r in made]


def test_list_filters_by_tenant_subscription_type_time_and_reason(cfg, letters):
    every = list(read(cfg))
    assert len(every) == 5
    assert sum(d.malformed for d in every) == 1
    ids = lambda f: sorted(d.record.delivery_id for d in every if f(d) and d.record)  # noqa: E731
    assert ids(Filter(tenant_id="acme")) == sorted(r.delivery_id for r in letters[:3])
    assert ids(Filter(all_tenants=True, subscription_id="sub_a2")) == [letters[2].delivery_id]
    assert ids(Filter(all_tenants=True, event_type="invoice.*")) == sorted(r.delivery_id for r in letters[1:3])
    assert ids(Filter(all_tenants=True, reason="client")) == [letters[2].delivery_id]
    assert ids(Filter(all_tenants=True, since=time.time() - 900, until=time.time() - 100)) == sorted(r.delivery_id for r in letters[1:3])
    summary = next(d for d in every if d.record and d.record.delivery_id == letters[0].delivery_id).summary()
    assert (summary["subscription_id"], summary["event_type"], summary["attempts"]) == ("sub_a1", "payment.failed", 2)
    assert "500" in summary["last_error"]
    assert ids(Filter(all_tenants=True)) == sorted(r.delivery_id for r in letters)
    assert ids(Filter(tenant_id="globex", event_type="invoice.*")) == []


def test_a_filter_names_its_tenant_or_asks_for_all_explicitly():
    for missing in (dict(), dict(subscription_id="sub_a1"), dict(tenant_id="acme", all_tenants=True)):
        with pytest.raises(ValidationError, match="^tenant: give a tenant, or ask for all tenants explicitly"):
            Filter(**missing)
    with pytest.raises(ValidationError, match="^tenant: 'a b' is not a tenant id"):
        Filter(tenant_id="a b")


def test_show_returns_the_whole_entry_and_unknown_ids_are_clear_errors(cfg, letters):
    first = next(iter(read(cfg)))
    assert find_any_tenant(cfg, first.id) == first
    with pytest.raises(NotFoundError):
        find_any_tenant(cfg, "0-999999")
    with pytest.raises(NotFoundError, match="has no partition 9"):
        find_any_tenant(cfg, "9-1")
    with pytest.raises(ValidationError, match="partition-offset"):
        find_any_tenant(cfg, "nonsense")


def test_show_for_a_tenant_finds_only_that_tenants_dead_letters(cfg, letters):
    every = list(read(cfg))
    globex = next(d for d in every if d.record and d.record.tenant_id == "globex")
    assert find(cfg, globex.id, tenant_id="globex") == globex
    with pytest.raises(NotFoundError, match=f"no dead letter {globex.id} for tenant acme"):
        find(cfg, globex.id, tenant_id="acme")
    malformed = next(d for d in every if d.malformed)  # no tenant: only operators see it
    with pytest.raises(NotFoundError, match="for tenant acme"):
        find(cfg, malformed.id, tenant_id="acme")
    with pytest.raises(TypeError, match="tenant_id"):
        find(cfg, globex.id)


def test_replay_sends_each_entry_once_with_its_webhook_id(cfg, letters):
    entries = [d for d in read(cfg) if Filter(tenant_id="acme")(d)]
    reader = TopicReader(cfg, DELIVERIES)
    report = replay(cfg, entries)
    assert sorted(report.replayed) == sorted(d.id for d in entries)
    got = [DeliveryRecord.from_bytes(m.value()) for m in reader.read_until(lambda rs: len(rs) >= 3, 30)]
    assert sorted(r.delivery_id for r in got) == sorted(r.delivery_id for r in letters[:3])
    assert all(r.attempt == 0 and r.attempts == () and r.replay_of for r in got)

    second = replay(cfg, entries)  # the same range again: reported, not doubled
    assert second.replayed == [] and sorted(second.already) == sorted(d.id for d in entries)
    assert len(reader.settle(1.5)) == 3

    forced = replay(cfg, entries[:1], force=True)
    assert forced.replayed == [entries[0].id]
    reader.close()


def test_malformed_entries_are_listed_but_not_replayed(cfg, letters):
    malformed = [d for d in read(cfg) if d.malformed]
    report = replay(cfg, malformed, dry_run=True)
    assert report.replayed == [] and list(report.not_replayable) == [malformed[0].id]


def test_cli_dlq_list_json_and_dry_run(env, cfg, letters):
    run = lambda *a: subprocess.run([sys.executable, "-m", "hookstream", *a], env=env, capture_output=True, text=True, timeout=60)  # noqa: E731
    listed = run("dlq", "list", "--tenant", "globex", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["delivery_id"] for r in rows] == [letters[3].delivery_id]
    everyone = run("dlq", "list")
    assert everyone.returncode == 0 and everyone.stdout.splitlines()[0] == "all tenants (no --tenant given)"
    assert len(everyone.stdout.splitlines()) == 1 + 1 + 5  # "all tenants", the table's header, the 5 entries
    one = run("dlq", "list", "--tenant", "globex")
    assert one.returncode == 0 and one.stdout.count("\n") == 1 + 1 and letters[3].subscription_id in one.stdout.splitlines()[1]
    everyone_json = run("dlq", "list", "--json")
    assert len(json.loads(everyone_json.stdout)) == 5 and everyone_json.stderr.startswith("all tenants (no --tenant given)")
    shown = run("dlq", "show", rows[0]["id"], "--tenant", "globex", "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["tenant_id"] == "globex"
    hidden = run("dlq", "show", rows[0]["id"], "--tenant", "acme")
    assert hidden.returncode == 3 and hidden.stderr == f"error: no dead letter {rows[0]['id']} for tenant acme\n"
    dry = run("dlq", "replay", "--subscription", "sub_a1", "--dry-run")
    assert dry.returncode == 0 and "would replay 2 dead letter(s)" in dry.stdout
    assert dry.stdout.startswith("all tenants (no --tenant given)\n")
    scoped = run("dlq", "replay", "--tenant", "globex", "--subscription", "sub_a1", "--dry-run")
    assert scoped.returncode == 0 and scoped.stdout == "no dead letters match\n"  # sub_a1 is acme's
    refused = run("dlq", "replay", "--subscription", "sub_a1")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    bad = run("dlq", "list", "--since", "yesterday-ish")
    assert bad.returncode == 2 and "--since" in bad.stderr and "Traceback" not in bad.stderr


def test_recover_refans_a_window_to_one_subscription_with_the_original_ids(cfg, env):
    store = SubscriptionStore.open(cfg)
    target, _ = store.add("acme", "http://127.0.0.1:9/a", ["invoice.*"])
    other, _ = store.add("acme", "http://127.0.0.1:9/b", ["*"])
    publish_pending(cfg)
    old = [Event.new("invoice.sent", "acme", example("invoice.sent"))]
    produce(cfg, event_topic_for("invoice.sent"), [(e.id.encode(), e.to_bytes()) for e in old])
    time.sleep(1.2)
    since = time.time()
    window = [Event.new(t, ten, example(t)) for ten, t in [("acme", "invoice.created"), ("acme", "invoice.sent"),
                                                           ("acme", "payment.received"), ("globex", "invoice.sent")]]
    for e in window:
        produce(cfg, event_topic_for(e.type), [(e.id.encode(), e.to_bytes())])
    reader = TopicReader(cfg, DELIVERIES)
    report = recover(cfg, target, since=since)
    assert report.queued == 2
    got = [DeliveryRecord.from_bytes(m.value()) for m in reader.read_until(lambda rs: len(rs) >= 2, 30)]
    reader.settle(1.0)
    reader.close()
    assert {r.delivery_id for r in got} == {delivery_id(window[0].id, target.id), delivery_id(window[1].id, target.id)}
    assert all(r.subscription_id == target.id for r in got)
    assert other.id not in {DeliveryRecord.from_bytes(m.value()).subscription_id for m in reader.records}
