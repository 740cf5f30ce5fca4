"""Following the compacted topic (real broker): ready once caught up, then current, without a group."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime

import pytest

from hookstream.core.crypto import load_keyring
from hookstream.core.errors import TopicError
from hookstream.subscriptions.models import Status, Subscription
from hookstream.core.secrets import Secret
from hookstream.subscriptions.topic import encode
from hookstream.subscriptions.view import FollowerThread, SubscriptionTable, follow
from tests.integration.subscriptions_helpers import ensure_subscriptions_topic, produce_raw

pytestmark = pytest.mark.kafka

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def make_sub(sub_id: str, version: int = 1, tenant: str = "acme", **kw) -> Subscription:
    fields = dict(
        id=sub_id, tenant_id=tenant, url=f"https://hooks.example.com/{sub_id}", events=("*",), status=Status.ACTIVE,
        secrets=(Secret.generate(),), created_at=T0, updated_at=T0, version=version,
    )
    fields.update(kw)
    return Subscription(**fields)


def encode_cannot_sign(sub: Subscription, keyring) -> tuple[bytes, bytes]:
    """``sub``'s record with its secret sealed as ``whsec_`` + 5 bytes: it opens, but cannot sign
    (``Secret`` refuses such a key, so a poisoned record is written by hand, as a stranger would)."""
    key, value = encode(sub, keyring)
    doc = json.loads(value)
    doc["secrets"][0]["secret"] = keyring.seal("whsec_c2hvcnQ=", f"subscription/{sub.id}/secret")
    return key, json.dumps(doc).encode()


def eventually(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def follower(settings):
    started: list[FollowerThread] = []

    def start() -> FollowerThread:
        thread = FollowerThread(settings).start()
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.stop()


def test_empty_topic_is_ready_at_once(settings, follower):
    ensure_subscriptions_topic(settings)
    thread = follower()
    assert thread.wait_ready(15)
    assert len(thread.table) == 0


def test_ready_means_everything_published_before_start_was_read(settings, follower):
    ensure_subscriptions_topic(settings)
    subs = [make_sub(f"sub_{i}", tenant=f"t{i % 3}") for i in range(200)]
    produce_raw(settings, [encode(s, load_keyring(settings)) for s in subs] + [(b"sub_7", None)])
    thread = follower()
    assert thread.wait_ready(20)
    assert len(thread.table) == 199 and "sub_7" not in thread.table
    assert thread.table.get("sub_8") == subs[8]


def test_changes_after_ready_reach_the_table(settings, follower):
    ensure_subscriptions_topic(settings)
    produce_raw(settings, [encode(make_sub("sub_a"), load_keyring(settings))])
    thread = follower()
    assert thread.wait_ready(15)
    produce_raw(settings, [encode(make_sub("sub_a", 2, status=Status.DISABLED), load_keyring(settings)), encode(make_sub("sub_b"), load_keyring(settings))])
    assert eventually(lambda: "sub_b" in thread.table and thread.table.get("sub_a").status == Status.DISABLED)
    produce_raw(settings, [(b"sub_a", None)])
    assert eventually(lambda: "sub_a" not in thread.table)


def test_unreadable_record_is_skipped_and_logged_without_its_value(settings, follower, caplog):
    ensure_subscriptions_topic(settings)
    secret = Secret.generate().reveal()
    produce_raw(settings, [(b"sub_bad", b'{"id": "sub_bad", "secrets": "' + secret.encode() + b'"}'), encode(make_sub("sub_ok"), load_keyring(settings))])
    caplog.set_level(logging.ERROR, logger="hookstream.subscriptions")
    thread = follower()
    assert thread.wait_ready(15)
    assert list(thread.table.ids()) == ["sub_ok"]
    assert "skipped an unreadable record" in caplog.text and secret not in caplog.text


def test_missing_topic_stops_the_follower_with_an_error_it_keeps(settings, follower):
    thread = follower()  # no topic created under this test's prefix
    assert not thread.wait_ready(15)
    assert isinstance(thread.error, TopicError) and "hookstream topics ensure" in str(thread.error)
    assert not thread.alive


def test_follow_returns_when_stopped_and_joins_no_consumer_group(settings):
    ensure_subscriptions_topic(settings)
    table, stop, ready = SubscriptionTable(load_keyring(settings)), threading.Event(), threading.Event()
    thread = threading.Thread(target=follow, args=(settings, table, stop, ready))
    thread.start()
    assert ready.wait(15)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    from confluent_kafka.admin import AdminClient

    groups = AdminClient({"bootstrap.servers": settings.kafka_bootstrap}).list_consumer_groups(request_timeout=10).result()
    assert not [g for g in groups.valid if g.group_id.startswith("hookstream-subscriptions-view")]


def test_two_readers_each_see_the_whole_table(settings, follower):
    ensure_subscriptions_topic(settings)
    produce_raw(settings, [encode(make_sub(f"sub_{i}"), load_keyring(settings)) for i in range(5)])
    one, two = follower(), follower()
    assert one.wait_ready(15) and two.wait_ready(15)
    assert one.table.snapshot() == two.table.snapshot() and len(one.table) == 5


def _poisoned_records(settings) -> list[tuple[bytes, bytes]]:
    """Records a follower cannot decode, of the kinds that once escaped ``WireFormatError``."""
    keyring = load_keyring(settings)
    key, value = encode(make_sub("sub_poison_time"), keyring)
    doc = json.loads(value)
    doc["created_at"] = "0001-01-01T00:00:00+01:00"  # no UTC time: OverflowError
    late = dict(doc, id="sub_poison_late", created_at=doc["updated_at"], updated_at="9999-12-31T23:59:59-01:00")
    return [
        (key, json.dumps(doc).encode()),
        (b"sub_poison_late", json.dumps(late).encode()),
        (b"sub_poison_deep", b"[" * 100_000),  # RecursionError in json.loads
    ]


def test_a_poisoned_record_is_skipped_and_the_follower_goes_on(settings, follower, caplog):
    ensure_subscriptions_topic(settings)
    keyring = load_keyring(settings)
    bad_secret = encode_cannot_sign(make_sub("sub_bad_secret"), keyring)
    produce_raw(settings, _poisoned_records(settings) + [bad_secret]
                + [encode(make_sub(f"sub_ok{i}"), keyring) for i in range(5)])
    caplog.set_level(logging.ERROR, logger="hookstream.subscriptions")
    thread = follower()
    assert thread.wait_ready(20), thread.error
    assert thread.alive and thread.error is None
    assert sorted(thread.table.ids()) == ["sub_bad_secret"] + [f"sub_ok{i}" for i in range(5)]
    marked = thread.table.get("sub_bad_secret")
    assert marked.secrets == () and "cannot sign" in marked.sealed_error
    assert caplog.text.count("skipped an unreadable record") == 3
    produce_raw(settings, [encode(make_sub("sub_after"), keyring)])  # and it stays current
    assert eventually(lambda: "sub_after" in thread.table)


def test_load_table_reads_past_a_poisoned_record(settings):
    from hookstream.subscriptions.view import load_table

    ensure_subscriptions_topic(settings)
    produce_raw(settings, _poisoned_records(settings) + [encode(make_sub("sub_ok"), load_keyring(settings))])
    assert load_table(settings, timeout=20).ids() == ["sub_ok"]
