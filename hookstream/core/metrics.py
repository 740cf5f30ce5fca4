"""Prometheus plumbing shared by the workers: the HTTP endpoint and consumer lag.

Each worker process serves its own registry on ``/metrics``. Consumer lag is measured from the
outside, the way Burrow or kafka-consumer-groups do it: the group's committed offset against each
partition's high watermark, so it is right whatever client library the group uses.
"""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from prometheus_client import Gauge, start_http_server

from hookstream.core.kafka import make_admin, make_consumer
from hookstream.core.settings import Settings

log = logging.getLogger(__name__)

CONSUMER_LAG = Gauge(
    "hookstream_consumer_lag",
    "Records in the partition not yet committed by the consumer group.",
    ["group", "topic", "partition"],
)


def serve_metrics(port: int, addr: str = "127.0.0.1") -> int:
    """Serve /metrics on ``port`` (0 picks a free one); returns the port."""
    server, _thread = start_http_server(port, addr=addr)
    return server.server_address[1]


def measure_lag(admin: AdminClient, reader: Consumer, topics: list[str], timeout: float = 10.0) -> dict[tuple[str, int], int]:
    """Lag per partition of ``topics`` for the group of ``reader`` (see ``committed_reader``).

    The committed offsets are read through a consumer handle of the group, not with
    ``AdminClient.list_consumer_group_offsets``: in librdkafka 2.16 an admin client answered
    "coordinator not available" (a broker still loading its groups after a restart) segfaults
    (``rd_kafka_handle_OffsetFetch`` asks the client's group handle, which an admin client does
    not have, to look the coordinator up again), and that killed both workers at every broker
    restart (tests/integration/test_broker_restart.py)."""
    md = admin.list_topics(timeout=timeout).topics
    tps = [TopicPartition(t, p) for t in topics if t in md for p in md[t].partitions]
    if not tps:
        return {}
    committed = {(tp.topic, tp.partition): tp.offset for tp in _committed(reader, tps, timeout)}
    ends = admin.list_offsets({tp: OffsetSpec.latest() for tp in tps}, request_timeout=timeout)
    lag = {}
    for tp, fut in ends.items():
        end = fut.result().offset
        done = committed.get((tp.topic, tp.partition), -1)
        lag[(tp.topic, tp.partition)] = end - done if done >= 0 else end
    return lag


def _committed(reader: Consumer, tps: list[TopicPartition], timeout: float) -> list[TopicPartition]:
    """``reader.committed``, tried again until ``timeout``: a fresh handle's first answer is often
    "not coordinator" (it has not found the group's coordinator yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return reader.committed(tps, timeout=max(deadline - time.monotonic(), 0.1))
        except KafkaException:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def committed_reader(settings: Settings, group: str) -> Consumer:
    """A consumer of ``group`` that only reads its committed offsets: it never subscribes, so it
    never joins the group nor moves its partitions."""
    return make_consumer(settings, group, **{"client.id": "hookstream-lag", "log_level": 3})


class LagMonitor(threading.Thread):
    """Refreshes ``hookstream_consumer_lag`` for one group every ``interval`` seconds."""

    def __init__(self, settings: Settings, group: str, topics: list[str], interval: float = 5.0) -> None:
        super().__init__(name=f"lag-{group}", daemon=True)
        self.admin = make_admin(settings)
        self.reader = committed_reader(settings, group)
        self.group, self.topics, self.interval = group, topics, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                try:
                    lags = measure_lag(self.admin, self.reader, self.topics)
                    for (topic, partition), lag in lags.items():
                        CONSUMER_LAG.labels(self.group, topic, str(partition)).set(lag)
                except KafkaException as exc:
                    log.warning("could not measure lag of %s: %s", self.group, exc.args[0].str())
                except Exception as exc:  # never let monitoring kill a worker
                    log.warning("could not measure lag of %s: %s", self.group, exc)
        finally:
            self.reader.close()

    def stop(self) -> None:
        self.stopped.set()
