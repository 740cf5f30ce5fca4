"""The Kafka client factories: one place builds every producer, consumer and admin client from
the shared configurations (no broker needed: clients connect lazily)."""

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from hookstream.core.kafka import consumer_config, make_admin, make_consumer, make_producer, producer_config
from hookstream.core.settings import Settings

NOWHERE = Settings(kafka_bootstrap="127.0.0.1:1")


def test_the_factories_build_clients_from_the_shared_configs():
    producer = make_producer(NOWHERE, **{"client.id": "hookstream-test"})
    assert isinstance(producer, Producer)
    consumer = make_consumer(NOWHERE, "g1", **{"client.id": "hookstream-test", "log_level": 0})
    assert isinstance(consumer, Consumer)
    consumer.close()
    assert isinstance(make_admin(NOWHERE), AdminClient)


def test_overrides_reach_the_client():
    # a value librdkafka refuses proves the override was passed on, not dropped
    with pytest.raises(KafkaException, match="queue.buffering.max.ms|linger.ms"):
        make_producer(NOWHERE, **{"linger.ms": -5})
    with pytest.raises(KafkaException, match="session.timeout.ms"):
        make_consumer(NOWHERE, "g1", **{"session.timeout.ms": -1})


def test_the_configs_other_branches_use_stay_as_they_were():
    assert producer_config(NOWHERE)["acks"] == "all" and producer_config(NOWHERE)["enable.idempotence"] is True
    config = consumer_config(NOWHERE, "g1", **{"client.id": "x"})
    assert config["enable.auto.commit"] is False and config["group.id"] == "g1" and config["client.id"] == "x"


def test_the_workers_change_only_what_differs_for_them():
    from hookstream.delivery.loop import CLIENT_ID, CommitRelay, consumer_overrides, producer_overrides
    from hookstream.streams.app import producer_overrides as streams_producer_overrides

    commits = CommitRelay()
    config = consumer_config(NOWHERE, "g1", **consumer_overrides(commits))
    # the shared consumer settings, plus the delivery worker's client id, commit callback,
    # round-robin assignment (sticky left every `deliveries` partition on one worker) and a 10 s
    # session (a SIGKILLed worker's partitions stalled librdkafka's default 45 s in the fault suite)
    assert config == {**consumer_config(NOWHERE, "g1"), "client.id": CLIENT_ID, "on_commit": commits,
                      "partition.assignment.strategy": "roundrobin", "session.timeout.ms": 10_000,
                      "heartbeat.interval.ms": 3_000}
    assert producer_config(NOWHERE, **producer_overrides()) == {**producer_config(NOWHERE), "client.id": CLIENT_ID}
    assert producer_config(NOWHERE, **producer_overrides(**{"message.max.bytes": 8000}))["message.max.bytes"] == 8000
    streams = producer_config(NOWHERE, **streams_producer_overrides())
    assert streams == {**producer_config(NOWHERE), "linger.ms": 2, "client.id": "hookstream-streams"}


def test_no_kafka_client_is_built_outside_the_factories():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    exempt = {root / "hookstream/core/kafka.py", root / "streams/lean.py"}  # lean.py: faust's aiokafka driver
    built = re.compile(r"(?<!\w)(Consumer|Producer|AdminClient)\(")
    found = [
        f"{path.relative_to(root)}:{n}"
        for folder in ("hookstream", "schemas", "producers", "streams", "delivery")
        for path in sorted((root / folder).rglob("*.py")) if path not in exempt and ".venv" not in path.parts
        for n, line in enumerate(path.read_text().splitlines(), 1) if built.search(line) and not line.lstrip().startswith("class ")
    ]
    assert found == []
