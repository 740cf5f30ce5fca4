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
