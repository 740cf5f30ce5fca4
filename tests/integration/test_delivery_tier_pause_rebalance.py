"""A retry-tier partition paused until its head record is due, then a rebalance that hands it back
to the same worker: the record must still be retried.

Found by the fault suite (tests/faults): after a rolling restart or a scale-out, some pairs of the
failing endpoints were never retried again. librdkafka keeps a partition's *pause* across a
rebalance that assigns it back to the same consumer (confluentinc/librdkafka#1849,
confluent-kafka-go#193), while ``delivery.loop.ConsumeLoop._release`` forgets the partition's
resume timer on revoke: the partition stayed paused for as long as the worker ran. ``_on_assign``
now resumes every partition it is given (a head not yet due pauses it again).

The rebalance here is made by a second member of the delivery group that subscribes only to an
unrelated topic: the (eager, round-robin) rebalance revokes and re-assigns every partition, and
every partition comes back to the worker.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer

from hookstream.core.topics import DEAD_LETTERS, DELIVERIES
from hookstream.delivery.worker import group_id
from tests.integration.delivery_helpers import (  # noqa: F401  (cfg, env, receiver, store are fixtures)
    cfg, env, fail_times, make_record, produce_records, receiver, store, subscribe, wait_for,
)
from tests.integration.pipeline import worker

pytestmark = pytest.mark.kafka

RETRY_DELAY = "6s"


@pytest.fixture
def tier_env(env):
    return dict(env, HOOKSTREAM_RETRY_SCHEDULE=RETRY_DELAY)


def _rebalance(cfg) -> None:
    """Join the delivery group for a moment (subscribed to another topic), then leave."""
    other = Consumer({"bootstrap.servers": cfg.kafka_bootstrap, "group.id": group_id(cfg),
                      "partition.assignment.strategy": "roundrobin", "enable.auto.commit": False, "log_level": 0})
    try:
        other.subscribe([cfg.topic(DEAD_LETTERS)])
        deadline = time.monotonic() + 30
        while not other.assignment() and time.monotonic() < deadline:
            other.poll(0.2)
    finally:
        other.close()


def test_a_retry_paused_until_due_is_still_retried_after_a_rebalance(tier_env, cfg, store, receiver, tmp_path):
    from hookstream.core.settings import Settings

    cfg = Settings.from_env(tier_env)
    sub_id, _ = subscribe(store, cfg, "acme", receiver.route("/flaky", fail_times(1)))
    with worker(tier_env, ["delivery", "worker", "--metrics-port", "0"], tmp_path / "worker.log") as w:
        produce_records(cfg, [make_record(sub_id, "acme")])
        wait_for(lambda: len(receiver.hits_for("/flaky")) == 1, 60, "the first attempt (answered 500)")
        time.sleep(1.5)  # the retry is on deliveries.retry.1 now, its partition paused until it is due (~6 s)
        _rebalance(cfg)
        # due ~6 s after the first attempt; 60 s is far more than the delay and a rebalance
        wait_for(lambda: len(receiver.hits_for("/flaky")) >= 2, 60, "the retry after the rebalance")
        assert w.alive, w.log()[-3000:]
