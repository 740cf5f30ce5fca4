"""The three-node cluster's fault handles (``LocalCluster.kill``/``start_node``/``active_controller``/
``partition_leader``) on real brokers: what the fault suite builds on."""

import signal
import uuid

import pytest
from confluent_kafka.admin import NewTopic

from hookstream.core.kafka import make_admin
from hookstream.shell.broker import pid_alive

pytestmark = [pytest.mark.kafka, pytest.mark.cluster, pytest.mark.timeout(300)]


def test_active_controller_is_a_live_node_and_moves_when_it_is_killed(kafka_cluster):
    kafka_cluster.start()  # every node up, whatever an earlier test did
    leader = kafka_cluster.active_controller()
    assert leader in kafka_cluster.nodes
    pid = kafka_cluster.status().brokers[leader - 1].pid
    try:
        kafka_cluster.kill(leader)
        assert not pid_alive(pid)
        assert not kafka_cluster.status().brokers[leader - 1].alive
        successor = kafka_cluster.active_controller()
        assert successor != leader and successor in kafka_cluster.nodes
    finally:
        kafka_cluster.start_node(leader)
    status = kafka_cluster.status()
    assert status.running, status
    assert status.brokers[leader - 1].pid not in (None, pid)


def test_partition_leader_names_a_live_node_and_moves_when_it_is_killed(kafka_cluster):
    kafka_cluster.start()
    topic = f"leader-{uuid.uuid4().hex[:8]}"
    admin = make_admin(kafka_cluster.settings.model_copy(update={"kafka_bootstrap": kafka_cluster.bootstrap}))
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=3)])[topic].result(30)
    leader = kafka_cluster.partition_leader(topic)
    assert leader in kafka_cluster.nodes
    try:
        kafka_cluster.kill(leader, signal.SIGKILL)
        moved = kafka_cluster.partition_leader(topic)
        assert moved != leader and kafka_cluster.status().brokers[moved - 1].alive
    finally:
        kafka_cluster.start_node(leader)
    assert kafka_cluster.status().running
