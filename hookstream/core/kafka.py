"""Kafka client settings shared by every part of the pipeline.

One place decides how hookstream talks to Kafka, so producers, workers and tools agree:
idempotent producers with ``acks=all``; consumers that never auto-commit (offsets are committed
only after the outcome is durable: at-least-once everywhere).
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaException, Producer

from hookstream.core.settings import Settings


def admin_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    return {"bootstrap.servers": settings.kafka_bootstrap, "log_level": 3, **overrides}


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """confluent-kafka producer: idempotent, every in-sync replica acknowledges, small linger."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "client.id": "hookstream",
        **overrides,
    }


def consumer_config(settings: Settings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """confluent-kafka consumer: manual commits only, read committed data, start at the earliest."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "partition.assignment.strategy": "cooperative-sticky",
        "client.id": "hookstream",
        **overrides,
    }


def produce_one(producer: Producer, topic: str, key: bytes, value: bytes, on_delivery, *, wait: float = 60.0) -> str | None:
    """Produce one record from a command-line tool; None, or why the client refused it at once
    (``message.max.bytes``, say). A full queue is waited out (the tool has nothing else to do),
    for ``wait`` seconds at most."""
    deadline = time.monotonic() + wait
    while True:
        try:
            producer.produce(topic, value, key, on_delivery=on_delivery)
        except BufferError:
            if time.monotonic() > deadline:
                return "the producer's queue stayed full"
            producer.poll(0.1)
            continue
        except KafkaException as exc:
            return exc.args[0].str()
        producer.poll(0)
        return None
