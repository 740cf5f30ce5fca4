"""Prometheus plumbing shared by the workers: the HTTP endpoint and consumer lag.

Each worker process serves its own registry on ``/metrics``. Consumer lag is measured from the
outside, the way Burrow or kafka-consumer-groups do it: the group's committed offset against each
partition's high watermark, so it is right whatever client library the group uses.
"""

from __future__ import annotations

import logging
import threading

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from prometheus_client import Gauge, start_http_server

from hookstream.kafka import admin_config
from hookstream.settings import Settings

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


def measure_lag(admin: AdminClient, group: str, topics: list[str], timeout: float = 10.0) -> dict[tuple[str, int], int]:
    md = admin.list_topics(timeout=timeout).topics
    tps = [TopicPartition(t, p) for t in topics if t in md for p in md[t].partitions]
    if not tps:
        return {}
    committed_f = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)], request_timeout=timeout)
    committed = {(tp.topic, tp.partition): tp.offset for tp in committed_f[group].result().topic_partitions}
    ends = admin.list_offsets({tp: OffsetSpec.latest() for tp in tps}, request_timeout=timeout)
    lag = {}
    for tp, fut in ends.items():
        end = fut.result().offset
        done = committed.get((tp.topic, tp.partition), -1)
        lag[(tp.topic, tp.partition)] = end - done if done >= 0 else end
    return lag


class LagMonitor(threading.Thread):
    """Refreshes ``hookstream_consumer_lag`` for one group every ``interval`` seconds."""

    def __init__(self, settings: Settings, group: str, topics: list[str], interval: float = 5.0) -> None:
        super().__init__(name=f"lag-{group}", daemon=True)
        self.admin = AdminClient(admin_config(settings))
        self.group, self.topics, self.interval = group, topics, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                for (topic, partition), lag in measure_lag(self.admin, self.group, self.topics).items():
                    CONSUMER_LAG.labels(self.group, topic, str(partition)).set(lag)
            except KafkaException as exc:
                log.warning("could not measure lag of %s: %s", self.group, exc.args[0].str())
            except Exception as exc:  # never let monitoring kill a worker
                log.warning("could not measure lag of %s: %s", self.group, exc)

    def stop(self) -> None:
        self.stopped.set()
