"""A broker that goes away: SIGKILL the only broker mid-load, start it again, lose nothing.

This test runs its OWN broker (its own free port and state dir), not the session's, because it
kills it. The real pipeline runs on it: a publisher thread at a steady rate, the stream worker
and a delivery worker as processes, and a loopback receiver. Every (endpoint, event) pair must
arrive; a duplicate is allowed only with the webhook-id of its pair (a redelivery).

What it found: both workers died (SIGSEGV in librdkafka) at nearly every restart, because their
lag monitors asked an AdminClient for committed offsets while the restarted broker still
answered "coordinator not available" (see ``hookstream.metrics.measure_lag``).
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from hookstream.shell.broker import LocalBroker, pid_alive
from hookstream.core.wire import delivery_id
from hookstream.core.settings import Settings
from hookstream.subscriptions.store import SubscriptionStore
from hookstream.subscriptions.topic import publish_pending
from hookstream.core.topics import ensure_topics
from hookstream.producers import Publisher
from hookstream.schemas import Event, example
from tests.conftest import start_own_broker
from tests.integration.delivery_helpers import Receiver, status, wait_for
from tests.integration.pipeline import worker

TENANTS = ("acme", "globex", "initech")
TYPES = ("payment.received", "invoice.created", "customer.updated", "sales_order.confirmed")
EVENTS = 600
RATE = 30.0  # events per second: the load runs ~20 s, the broker dies ~5 s in


@pytest.fixture
def own_env(tmp_path):
    """Environment of a broker of this test's own (started, and stopped at the end)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKSTREAM_")}
    env.update(
        HOOKSTREAM_STATE_DIR=str(tmp_path / "state"), HOOKSTREAM_TOPIC_PREFIX="restart.",
        HOOKSTREAM_DATABASE_URL=f"sqlite:///{tmp_path / 'hookstream.db'}",
        HOOKSTREAM_ALLOW_HTTP="1", HOOKSTREAM_ALLOWED_NETWORKS="127.0.0.0/8",
        HOOKSTREAM_RETRY_SCHEDULE="200ms,400ms,600ms,1s,2s,5s", HOOKSTREAM_REQUEST_TIMEOUT="5s",
    )
    start_own_broker(env)
    try:
        yield env
    finally:
        LocalBroker(Settings.from_env(env)).stop()


def lags(settings: Settings) -> str:
    """Each group's total lag, to tell which stage stalled when a delivery is missing."""
    from confluent_kafka.admin import AdminClient

    from hookstream.core.kafka import admin_config
    from hookstream.core.metrics import committed_reader, measure_lag
    from hookstream.core.topics import DELIVERIES, EVENT_TOPICS, retry_topic

    admin = AdminClient(admin_config(settings))
    events = [settings.topic(t) for t in EVENT_TOPICS.values()]
    deliveries = [settings.topic(DELIVERIES)] + [settings.topic(retry_topic(t)) for t in range(1, len(settings.retry_schedule) + 1)]
    out = []
    for group, topics in ((f"{settings.topic_prefix}hookstream-streams", events), (f"{settings.topic_prefix}hookstream-delivery", deliveries)):
        reader = committed_reader(settings, group)
        try:
            out.append(f"{group} lag {sum(measure_lag(admin, reader, topics).values())}")
        except Exception as exc:  # diagnostics only
            out.append(f"{group} lag unknown ({exc})")
        finally:
            reader.close()
    return ", ".join(out)


def where_lost(settings: Settings, missing: set[str], published: list[Event], subs_of: dict, path_of: dict,
               *workers) -> str:
    """Which pairs are missing, and where each vanished: its event on its topic? a delivery record?
    a retry or dead letter? the workers' log lines about drops, unknown subscriptions, the follower."""
    from hookstream.core.topics import DEAD_LETTERS, DELIVERIES, EVENT_TOPICS, retry_topic

    lost = {delivery_id(ev.id, sub): (ev, sub) for ev in published for sub in subs_of[ev.tenant_id]
            if delivery_id(ev.id, sub) in missing}
    lines = [f"missing: event {ev.id} ({ev.type}, tenant {ev.tenant_id}) -> {path_of[sub]} ({sub})"
             for ev, sub in list(lost.values())[:20]]
    topics = list(EVENT_TOPICS.values()) + [DELIVERIES, DEAD_LETTERS] + [retry_topic(t) for t in range(1, len(settings.retry_schedule) + 1)]
    event_ids = {ev.id for ev, _ in lost.values()}
    wanted = [k.encode() for k in event_ids | set(lost)]
    for topic in topics:
        try:
            found, count = _scan(settings, topic, wanted)
            lines.append(f"{settings.topic(topic)}: {count} records read, {len(found)} about the missing pairs")
            lines += [f"  [{m.partition()}]@{m.offset()}: {(m.value() or b'')[:160]!r}" for m in found[:10]]
        except Exception as exc:  # diagnostics only
            lines.append(f"{topic}: unreadable ({exc})")
    words = ("drop", "unknown", "follower", "subscriptions", "error", "critical", "reset", "warning", "revok", "lost")
    noise = ("unable connect", "nodenotready", "unable to update metadata", "failed fetch", "connect to ipv4", "could not measure lag")
    for w in workers:  # what the workers said, without the clients' connection retries while the broker was down
        log_lines = [ln for ln in w.log().splitlines()
                     if any(x in ln.lower() for x in words) and not any(x in ln.lower() for x in noise)]
        lines.append(f"--- {w.log_path.name}: {len(log_lines)} notable lines, last 40:")
        lines += [ln[:300] for ln in log_lines[-40:]]
    return "\n".join(lines)


def _scan(settings: Settings, topic: str, wanted: list[bytes], timeout: float = 60.0) -> tuple[list, int]:
    """Every record of ``topic`` up to its end (end of every partition, bounded), those mentioning ``wanted``."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "restart-diagnostics",
                         "enable.auto.commit": False, "enable.partition.eof": True, "log_level": 0})
    try:
        name = settings.topic(topic)
        partitions = consumer.list_topics(name, timeout=10).topics[name].partitions
        consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING) for p in partitions])
        at_end, found, count = set(), [], 0
        deadline = time.monotonic() + timeout
        while len(at_end) < len(partitions) and time.monotonic() < deadline:
            for m in consumer.consume(500, 0.5):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        at_end.add(m.partition())
                    continue
                count += 1
                if any(w in (m.value() or b"") for w in wanted):
                    found.append(m)
        if len(at_end) < len(partitions):
            raise TimeoutError(f"read {count} records but not to the end within {timeout:g}s")
        return found, count
    finally:
        consumer.close()


def _sigkill(broker: LocalBroker) -> None:
    pid = broker._read_pid()
    assert pid is not None, "the test's broker is not running"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while pid_alive(pid):
        assert time.monotonic() < deadline, "the broker survived SIGKILL"
        time.sleep(0.05)


@pytest.mark.timeout(600)  # a restarted broker can take a minute on a busy machine, and the load runs 20 s
def test_sigkill_of_the_only_broker_mid_load_loses_no_delivery(own_env, tmp_path):
    settings = Settings.from_env(own_env)
    ensure_topics(settings)
    receiver = Receiver().start()
    store = SubscriptionStore.open(settings)
    path_of = {}  # subscription id -> receiver path
    subs_of = {t: [] for t in TENANTS}
    for tenant in TENANTS:
        for n in range(2):
            path = f"/{tenant}/{n}"
            sub, _secret = store.add(tenant, receiver.route(path, status(204)), ["*"])
            path_of[sub.id] = path
            subs_of[tenant].append(sub.id)
    publish_pending(settings)

    published: list[Event] = []
    failures: list[BaseException] = []

    def load() -> None:  # a steady rate, right through the outage
        try:
            with Publisher(settings, delivery_timeout=300) as publisher:
                start = time.monotonic()
                for i in range(EVENTS):
                    t = TYPES[i % len(TYPES)]
                    event = Event.new(t, TENANTS[i % len(TENANTS)], example(t))
                    publisher.send(event)
                    published.append(event)
                    publisher.poll(0)
                    time.sleep(max(0.0, start + (i + 1) / RATE - time.monotonic()))
                publisher.flush(300)  # the broker may still be starting again: wait for it, bounded
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)

    broker = LocalBroker(settings)
    try:
        with worker(own_env, ["streams", "worker", "--loglevel", "info"], tmp_path / "streams.log") as sw, \
             worker(own_env, ["delivery", "worker"], tmp_path / "delivery.log") as dw:
            feeder = threading.Thread(target=load, daemon=True)
            feeder.start()
            wait_for(lambda: len(receiver.hits) >= 50, 90, "the first deliveries before the kill")
            _sigkill(broker)
            assert len(published) < EVENTS, "the load ended before the broker was killed"
            time.sleep(3)
            broker.start(owner_pid=os.getpid())  # same port, same state dir
            feeder.join(EVENTS / RATE + 330)
            assert not feeder.is_alive(), "the publisher did not finish"
            assert not failures, f"publishing failed: {failures[0]!r}"
            want = {delivery_id(ev.id, sub): path_of[sub] for ev in published for sub in subs_of[ev.tenant_id]}

            def delivered() -> set[str]:
                return {h.headers.get("webhook-id") for h in list(receiver.hits)}

            try:
                wait_for(lambda: delivered() >= set(want), 180, "every (endpoint, event) pair after the restart")
            except AssertionError:
                missing = set(want) - delivered()
                raise AssertionError(
                    f"{len(missing)} of {len(want)} pairs never delivered; {lags(settings)}; "
                    f"streams alive={sw.alive}, delivery alive={dw.alive}\n"
                    + where_lost(settings, missing, published, subs_of, path_of, sw, dw)
                ) from None
            assert sw.alive, sw.log()[-3000:]
            assert dw.alive, dw.log()[-3000:]
            time.sleep(1.0)  # let stragglers (redeliveries) arrive before the last check
            for hit in list(receiver.hits):
                wid = hit.headers.get("webhook-id")
                assert want.get(wid) == hit.path, f"unexpected delivery {wid} to {hit.path}"
    finally:
        receiver.stop()
