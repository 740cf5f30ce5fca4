"""docker-compose.yml cannot be run here (no Docker engine); check its structure instead."""

from pathlib import Path

import yaml

from hookstream.settings import KAFKA_VERSION

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def test_kafka_service_runs_the_pinned_release_in_kraft_mode():
    doc = yaml.safe_load(COMPOSE.read_text())
    kafka = doc["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}"
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    # the host-facing listener is the default HOOKSTREAM_KAFKA_BOOTSTRAP
    assert "9092:9092" in kafka["ports"]
    assert "EXTERNAL://localhost:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    # single node: internal topics must not ask for more replicas than exist
    assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 1
    assert int(env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"]) == 1


def test_every_named_volume_is_declared():
    doc = yaml.safe_load(COMPOSE.read_text())
    declared = set(doc.get("volumes") or {})
    for name, svc in doc["services"].items():
        for vol in svc.get("volumes", []):
            source = vol.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} uses undeclared volume {source}"
