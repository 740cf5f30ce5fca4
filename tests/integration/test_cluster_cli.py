"""`hookstream kafka start --brokers 3`, then status/stop/reset without the flag, from the CLI."""

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import _free_ports

pytestmark = [pytest.mark.kafka, pytest.mark.cluster, pytest.mark.timeout(400)]


def hookstream(env, *args, timeout=200):
    return subprocess.run([sys.executable, "-m", "hookstream", *args], env=env, capture_output=True, text=True, timeout=timeout)


def java_pids_for(state_dir) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"hookstream.state={state_dir}"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.fixture
def cluster_cli_env(tmp_path):
    port = _free_ports(6)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKSTREAM_") or k == "HOOKSTREAM_CACHE_DIR"}
    env.update(HOOKSTREAM_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}", HOOKSTREAM_STATE_DIR=str(tmp_path / "state"))
    yield env
    hookstream(env, "kafka", "stop")


def test_start_three_nodes_then_status_stop_and_reset_find_them_without_the_flag(cluster_cli_env):
    env = cluster_cli_env
    port = int(env["HOOKSTREAM_KAFKA_BOOTSTRAP"].rsplit(":", 1)[1])
    bootstrap = ",".join(f"127.0.0.1:{port + i}" for i in range(3))
    state = env["HOOKSTREAM_STATE_DIR"]

    started = hookstream(env, "kafka", "start", "--brokers", "3")
    assert started.returncode == 0, started.stderr
    assert f"export HOOKSTREAM_KAFKA_BOOTSTRAP={bootstrap}" in started.stdout.splitlines()
    assert len(java_pids_for(state)) == 3

    status = hookstream(env, "kafka", "status", "--json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["bootstrap"] == bootstrap and doc["running"] is True
    brokers = doc["brokers"]
    assert [(b["node_id"], b["port"], b["alive"]) for b in brokers] == [(1, port, True), (2, port + 1, True), (3, port + 2, True)]
    assert sorted(b["pid"] for b in brokers) == sorted(java_pids_for(state))

    os.kill(brokers[1]["pid"], signal.SIGKILL)  # node 2 crashes: the cluster is degraded, and says which node
    # (`kafka start` would start node 2 again: the kafka_cluster fixture does that between tests)
    degraded = hookstream(env, "kafka", "status", "--json")
    assert degraded.returncode == 1
    assert [b["alive"] for b in json.loads(degraded.stdout)["brokers"]] == [True, False, True]
    stopped = hookstream(env, "kafka", "stop")
    assert stopped.returncode == 0 and "stopped the cluster" in stopped.stdout, stopped.stderr
    assert java_pids_for(state) == []
    down = hookstream(env, "kafka", "status", "--json")
    assert down.returncode == 1 and [b["alive"] for b in json.loads(down.stdout)["brokers"]] == [False] * 3

    reset = hookstream(env, "kafka", "reset", "--yes")
    assert reset.returncode == 0, reset.stderr
    root = os.path.join(state, f"kafka-{port}")
    assert not any(os.path.exists(os.path.join(root, f"node-{i}", "data")) for i in (1, 2, 3))
    assert json.loads(open(os.path.join(root, "cluster.json")).read()) == {"brokers": 3}  # still found as a cluster


def test_a_node_that_cannot_start_is_named_in_one_line(cluster_cli_env, tmp_path):
    env = cluster_cli_env
    port = int(env["HOOKSTREAM_KAFKA_BOOTSTRAP"].rsplit(":", 1)[1])
    import socket

    with socket.socket() as squatter:  # node 3's controller port is taken
        squatter.bind(("127.0.0.1", port + 5))
        squatter.listen()
        result = hookstream(env, "kafka", "start", "--brokers", "3", timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: node 3: the controller port {port + 5} (bootstrap port + 5) on 127.0.0.1 is taken; "
        f"free it or choose another HOOKSTREAM_KAFKA_BOOTSTRAP port"
    ]
    assert java_pids_for(env["HOOKSTREAM_STATE_DIR"]) == []
