"""The delivery worker when its attempt log cannot be written: it stops visibly, commits nothing
it could not record, and the next worker delivers those records again (same webhook-id)."""

from __future__ import annotations

import sqlite3

import pytest
from confluent_kafka import Consumer, TopicPartition

from hookstream.delivery.attempt_log import list_deliveries_all_tenants
from hookstream.delivery.worker import group_id
from hookstream.core.db import make_engine
from hookstream.core.settings import Settings
from hookstream.core.topics import DELIVERIES
from tests.integration.delivery_helpers import (  # noqa: F401  (cfg, env, receiver, store are fixtures)
    cfg, env, make_record, produce_records, receiver, status, store, subscribe, wait_for,
)
from tests.integration.pipeline import worker

pytestmark = pytest.mark.kafka


def committed_total(settings: Settings) -> int:
    """The sum of the delivery group's committed offsets on ``deliveries`` (0 when none)."""
    topic = settings.topic(DELIVERIES)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group_id(settings)})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        offsets = consumer.committed([TopicPartition(topic, p) for p in parts], timeout=10)
    finally:
        consumer.close()
    return sum(max(tp.offset, 0) for tp in offsets)


def test_a_worker_whose_attempt_log_stays_locked_stops_and_commits_nothing(cfg, env, store, receiver, tmp_path):
    env = dict(env, HOOKSTREAM_ATTEMPT_LOG_MAX_OUTAGE="2s")
    sub, _secret = subscribe(store, cfg, "acme", receiver.route("/ok", status(204)))
    records = [make_record(sub, "acme", n) for n in range(5)]
    want = {r.delivery_id for r in records}
    database = make_engine(cfg.database_url).url.database
    with worker(env, ["delivery", "worker"], tmp_path / "w1.log") as w1:
        wait_for(lambda: "delivery worker ready" in w1.log(), 60, "the worker to start")
        lock = sqlite3.connect(database, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # another writer holds SQLite's lock from here on
        try:
            produce_records(cfg, records)
            wait_for(lambda: {h.headers["webhook-id"] for h in receiver.hits} == want, 60, "the first deliveries")
            wait_for(lambda: not w1.alive, 60, "the worker to give up on its attempt log")
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        assert w1.proc.returncode == 1
        errors = [line for line in w1.log().splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "HOOKSTREAM_ATTEMPT_LOG_MAX_OUTAGE" in errors[0], w1.log()[-3000:]
        assert "Traceback" not in w1.log()
    assert committed_total(cfg) == 0  # delivered, but not recorded: not committed

    with worker(env, ["delivery", "worker"], tmp_path / "w2.log") as w2:
        engine = make_engine(cfg.database_url)
        wait_for(lambda: {d["delivery_id"] for d in list_deliveries_all_tenants(engine)} == want, 60, "the attempts, recorded this time")
        wait_for(lambda: committed_total(cfg) == len(records), 30, "the offsets, committed this time")
        assert w2.stop() == 0, w2.log()[-3000:]
        engine.dispose()
    again = [h.headers["webhook-id"] for h in receiver.hits]
    assert len(again) == 2 * len(records) and set(again) == want  # delivered again, same webhook-ids
