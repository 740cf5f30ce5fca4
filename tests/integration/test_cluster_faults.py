"""The three-node cluster under faults, on real brokers: ``LocalCluster.kill``/``start_node``/
``active_controller``/``partition_leader`` (what the fault suite builds on), and acks=all records
surviving the SIGKILL of a partition's leader."""

import threading
import time
import uuid

from hookstream.core.kafka import make_consumer, make_producer
from hookstream.core.topics import EVENT_TOPICS, ensure_topics, topic_specs
from hookstream.shell.broker import pid_alive

import pytest

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
        assert successor != leader and kafka_cluster.status().brokers[successor - 1].alive
    finally:
        kafka_cluster.start()  # starts whichever nodes are down: here the old leader
    status = kafka_cluster.status()
    assert status.running, status
    assert status.brokers[leader - 1].pid not in (None, pid)


def test_acks_all_records_survive_the_sigkill_of_their_partitions_leader(kafka_cluster, cluster_settings, group_id):
    settings = cluster_settings
    topic_base = EVENT_TOPICS["payment"]
    ensure_topics(settings, [s for s in topic_specs(settings) if s.name == topic_base])
    topic = settings.topic(topic_base)
    leader = kafka_cluster.partition_leader(topic, 0)

    sent: list[bytes] = []
    failed: list[str] = []
    produced = threading.Event()

    def load() -> None:  # a steady 200 records/s across every partition, through the kill and the restart
        producer = make_producer(settings)

        def report(err, msg):
            if err is not None:
                failed.append(err.str())

        try:
            for i in range(3000):
                value = f"{i}-{uuid.uuid4().hex}".encode()
                producer.produce(topic, value, key=str(i % 60).encode(), on_delivery=report)
                sent.append(value)
                producer.poll(0)
                time.sleep(0.005)
            assert producer.flush(240) == 0, "records still unacknowledged"
        except BaseException as exc:  # noqa: BLE001 (reported by the test)
            failed.append(repr(exc))
        finally:
            produced.set()

    seen: set[bytes] = set()
    consumer = make_consumer(settings, group_id)
    consumer.subscribe([topic])
    feeder = threading.Thread(target=load, daemon=True)
    feeder.start()
    try:
        deadline = time.monotonic() + 240
        killed = False
        while not (produced.is_set() and seen >= set(sent)):
            assert time.monotonic() < deadline, f"consumed {len(seen)} of {len(sent)} records"
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                seen.add(msg.value())
            if not killed and len(seen) >= 300:  # mid-load: SIGKILL partition 0's leader
                kafka_cluster.kill(leader)
                killed = True
                moved = kafka_cluster.partition_leader(topic, 0)
                assert moved != leader and kafka_cluster.status().brokers[moved - 1].alive
                restarter = threading.Thread(target=kafka_cluster.start_node, args=(leader,), daemon=True)
                restarter.start()
        assert killed, "the load ended before the kill"
        restarter.join(120)
    finally:
        consumer.close()
    assert failed == []
    assert len(sent) == 3000 and seen == set(sent)  # every acknowledged record, read back; nothing else
    assert kafka_cluster.status().running
