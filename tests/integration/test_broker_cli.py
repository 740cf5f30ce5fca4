"""`hookstream kafka start|status|stop` run a real broker as a separate process, from the CLI."""

import os
import socket
import subprocess
import sys
import uuid

import pytest
from confluent_kafka import Consumer, Producer

from tests.conftest import _free_port_pair


def hookstream(env, *args, timeout=180):
    return subprocess.run([sys.executable, "-m", "hookstream", *args], env=env, capture_output=True, text=True, timeout=timeout)


def java_pids_for(state_dir) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"hookstream.state={state_dir}"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.fixture
def own_broker_env(tmp_path):
    port = _free_port_pair()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKSTREAM_")}
    if os.environ.get("HOOKSTREAM_CACHE_DIR"):
        env["HOOKSTREAM_CACHE_DIR"] = os.environ["HOOKSTREAM_CACHE_DIR"]
    env.update(HOOKSTREAM_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}", HOOKSTREAM_STATE_DIR=str(tmp_path / "state"))
    yield env
    hookstream(env, "kafka", "stop")


def test_start_ensure_produce_consume_stop(own_broker_env):
    env = own_broker_env
    bootstrap = env["HOOKSTREAM_KAFKA_BOOTSTRAP"]
    assert hookstream(env, "kafka", "status").returncode == 1

    started = hookstream(env, "kafka", "start")
    assert started.returncode == 0, started.stderr
    assert bootstrap in started.stdout
    again = hookstream(env, "kafka", "start")
    assert again.returncode == 0 and "already running" in again.stdout

    status = hookstream(env, "kafka", "status")
    assert status.returncode == 0 and "running" in status.stdout
    for _ in range(2):
        ensured = hookstream(env, "topics", "ensure")
        assert ensured.returncode == 0, ensured.stderr

    # an independent client at HOOKSTREAM_KAFKA_BOOTSTRAP sees the broker and its topics
    value = uuid.uuid4().bytes
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce("events.payment", key=b"p1", value=value)
    assert producer.flush(20) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "independent", "auto.offset.reset": "earliest"})
    consumer.subscribe(["events.payment"])
    msg = consumer.poll(20)
    consumer.close()
    assert msg is not None and msg.error() is None and msg.value() == value

    assert java_pids_for(env["HOOKSTREAM_STATE_DIR"])
    stopped = hookstream(env, "kafka", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert java_pids_for(env["HOOKSTREAM_STATE_DIR"]) == []
    assert hookstream(env, "kafka", "status").returncode == 1


def test_port_taken_by_another_program_is_a_clear_error(own_broker_env):
    host, port = own_broker_env["HOOKSTREAM_KAFKA_BOOTSTRAP"].split(":")
    with socket.socket() as squatter:
        squatter.bind((host, int(port)))
        squatter.listen()
        result = hookstream(own_broker_env, "kafka", "start", timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"port {port}" in result.stderr and "not a Kafka broker" in result.stderr


def test_missing_java_is_a_clear_error(own_broker_env):
    env = dict(own_broker_env, PATH="/nonexistent")
    env.pop("JAVA_HOME", None)
    result = hookstream(env, "kafka", "start", timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "java is not installed" in result.stderr


def test_missing_maven_is_a_clear_error_when_jars_are_not_cached(own_broker_env, tmp_path):
    java_dir = os.path.dirname(os.path.realpath(subprocess.run(["which", "java"], capture_output=True, text=True).stdout.strip()))
    env = dict(own_broker_env, PATH=java_dir, HOOKSTREAM_CACHE_DIR=str(tmp_path / "empty-cache"))
    result = hookstream(env, "kafka", "fetch", timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "mvn" in result.stderr and "not installed" in result.stderr


def test_corrupt_data_dir_says_how_to_reset(own_broker_env):
    env = own_broker_env
    assert hookstream(env, "kafka", "start").returncode == 0
    assert hookstream(env, "kafka", "stop").returncode == 0
    port = env["HOOKSTREAM_KAFKA_BOOTSTRAP"].rsplit(":", 1)[1]
    meta = os.path.join(env["HOOKSTREAM_STATE_DIR"], f"kafka-{port}", "data", "meta.properties")
    with open(meta, "w") as f:
        f.write("cluster.id=\x00garbage\nnode.id=7\nversion=1\n")

    result = hookstream(env, "kafka", "start")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "kafka reset" in result.stderr
    assert java_pids_for(env["HOOKSTREAM_STATE_DIR"]) == []

    assert hookstream(env, "kafka", "reset", "--yes").returncode == 0
    assert hookstream(env, "kafka", "start").returncode == 0


def test_a_broker_owned_by_a_killed_process_stops_too(own_broker_env):
    """The test fixture's broker must not outlive a test session killed by a timeout."""
    starter = subprocess.Popen(
        [sys.executable, "-c",
         "import os, time; from hookstream.shell.broker import LocalBroker; from hookstream.core.settings import Settings; "
         "LocalBroker(Settings.from_env()).start(owner_pid=os.getpid()); print('up', flush=True); time.sleep(600)"],
        env=own_broker_env, stdout=subprocess.PIPE, text=True,
    )
    assert starter.stdout.readline().strip() == "up"
    state = own_broker_env["HOOKSTREAM_STATE_DIR"]
    assert java_pids_for(state)
    starter.kill()
    starter.wait()
    import time

    deadline = time.monotonic() + 40
    while java_pids_for(state) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert java_pids_for(state) == []
