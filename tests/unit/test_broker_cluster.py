"""LocalCluster's port layout, state layout and node configuration (no JVM started: what
``start`` would write; tests/integration/test_cluster_*.py run the real nodes)."""

from __future__ import annotations

import base64
import json

import pytest

from hookstream.core.errors import BrokerError
from hookstream.core.settings import Settings
from hookstream.shell.broker import (
    MAX_BROKERS, LocalBroker, LocalCluster, _read_quorum_state, cluster_ports, new_cluster_id, recorded_brokers,
)


def props(node) -> dict[str, str]:
    return dict(line.split("=", 1) for line in node.config_lines() if line and not line.startswith("#"))


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(state_dir=tmp_path / "state", kafka_bootstrap="127.0.0.1:41000")


def test_ports_are_clients_first_then_controllers():
    assert cluster_ports(41000, 3) == [(1, 41000, 41003), (2, 41001, 41004), (3, 41002, 41005)]
    assert cluster_ports(9092, 1) == [(1, 9092, 9093)]  # the single node: P and P+1, as always


def test_a_three_node_cluster_lists_every_node_in_its_bootstrap_and_keeps_each_under_its_own_dir(settings):
    cluster = LocalCluster(settings, 3)
    assert cluster.bootstrap == "127.0.0.1:41000,127.0.0.1:41001,127.0.0.1:41002"
    root = settings.state_dir / "kafka-41000"
    assert [n.paths.root for n in cluster.nodes.values()] == [root / "node-1", root / "node-2", root / "node-3"]
    assert [n.port for n in cluster.nodes.values()] == [41000, 41001, 41002]
    assert [n.controller_port for n in cluster.nodes.values()] == [41003, 41004, 41005]


def test_each_node_is_broker_and_controller_of_one_static_three_voter_quorum(settings):
    cluster = LocalCluster(settings, 3)
    voters = "1@127.0.0.1:41003,2@127.0.0.1:41004,3@127.0.0.1:41005"
    for node_id, node in cluster.nodes.items():
        p = props(node)
        assert p["node.id"] == str(node_id)
        assert p["process.roles"] == "broker,controller"
        assert p["controller.quorum.voters"] == voters
        assert p["listeners"] == f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}"
        assert p["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{node.port}"
        assert p["log.dirs"] == str(node.paths.data)


def test_a_clusters_nodes_replicate_every_internal_topic_and_never_elect_an_unclean_leader(settings):
    p = props(LocalCluster(settings, 3).nodes[2])
    assert p["offsets.topic.replication.factor"] == "3"
    assert p["transaction.state.log.replication.factor"] == "3"
    assert p["transaction.state.log.min.isr"] == "2"
    assert p["share.coordinator.state.topic.replication.factor"] == "3"
    assert p["default.replication.factor"] == "3"
    assert p["min.insync.replicas"] == "2"
    assert p["unclean.leader.election.enable"] == "false"
    assert p["auto.create.topics.enable"] == "false"


def test_the_single_node_keeps_its_layout_ports_and_one_replica(settings):
    broker = LocalBroker(settings)
    single = LocalCluster(settings, 1)
    node = single.nodes[1]
    assert node.paths.root == broker.paths.root == settings.state_dir / "kafka-41000"  # existing state dirs still start
    p = props(node)
    assert p["node.id"] == "1" and p["controller.quorum.voters"] == "1@127.0.0.1:41001"
    assert p["offsets.topic.replication.factor"] == "1" and p["min.insync.replicas"] == "1"
    assert single.bootstrap == "127.0.0.1:41000"


def test_cluster_nodes_get_a_smaller_heap_than_the_single_node(settings, tmp_path):
    def heap(node) -> str:
        return next(a for a in node.java_cmd("java", tmp_path, "kafka.Kafka", heap=True) if a.startswith("-Xmx"))

    assert heap(LocalCluster(settings, 1).nodes[1]) == "-Xmx768m"
    assert heap(LocalCluster(settings, 3).nodes[1]) == "-Xmx512m"


def test_each_node_is_marked_as_ours_by_its_own_dir(settings, tmp_path):
    cluster = LocalCluster(settings, 3)
    cmd = cluster.nodes[3].java_cmd("java", tmp_path, "kafka.Kafka")
    assert f"-Dhookstream.state={cluster.root / 'node-3'}" in cmd


@pytest.mark.parametrize("brokers", [0, MAX_BROKERS + 1])
def test_a_node_count_out_of_range_is_a_one_line_error(settings, brokers):
    with pytest.raises(BrokerError, match=f"1 to {MAX_BROKERS} brokers, not {brokers}"):
        LocalCluster(settings, brokers)


def test_discover_finds_the_cluster_the_state_dir_records_and_else_the_single_node(settings):
    assert LocalCluster.discover(settings).size == 1
    assert recorded_brokers(settings) is None
    cluster = LocalCluster(settings, 3)
    cluster.root.mkdir(parents=True)
    assert cluster._cluster_id()  # recorded on first format, shared by every node
    assert recorded_brokers(settings) == 3
    assert LocalCluster.discover(settings).size == 3
    assert json.loads(cluster.marker.read_text())["cluster_id"] == cluster._cluster_id()
    # another port of the same state dir is another local Kafka
    assert LocalCluster.discover(settings.model_copy(update={"kafka_bootstrap": "127.0.0.1:42000"})).size == 1


def test_a_reset_cluster_keeps_its_size_but_gets_a_new_id(settings):
    cluster = LocalCluster(settings, 3)
    first = cluster._cluster_id()
    cluster.reset()
    assert recorded_brokers(settings) == 3
    assert cluster._cluster_id() != first


def test_a_single_nodes_data_is_not_taken_over_by_a_cluster(settings):
    node = LocalCluster(settings, 1).nodes[1]
    node.write_config()
    (node.paths.data / "meta.properties").write_text("node.id=1\n")
    with pytest.raises(BrokerError, match=r"holds a single broker's data; delete it with `hookstream kafka reset`"):
        LocalCluster(settings, 3).check_layout()


def test_a_clusters_data_is_not_taken_over_by_a_single_node_or_another_size(settings):
    cluster = LocalCluster(settings, 3)
    cluster._cluster_id()
    for node in cluster.nodes.values():
        node.write_config()
    (cluster.nodes[2].paths.data / "meta.properties").write_text("node.id=2\n")
    for other in (1, 5):
        with pytest.raises(BrokerError, match=r"holds a 3-node cluster; start it with `hookstream kafka start`"):
            LocalCluster(settings, other).check_layout()
    # without data (after a reset) another size may start there
    (cluster.nodes[2].paths.data / "meta.properties").unlink()
    LocalCluster(settings, 1).check_layout()
    assert recorded_brokers(settings) is None


def test_cluster_ids_are_what_kafka_storage_accepts():
    for _ in range(200):
        cid = new_cluster_id()
        assert len(cid) == 22 and not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_quorum_state_gives_epoch_and_leader_and_nothing_while_electing(tmp_path):
    path = tmp_path / "quorum-state"
    assert _read_quorum_state(path) is None
    path.write_text('{"clusterId":"","leaderId":2,"leaderEpoch":4,"votedId":2,"appliedOffset":0,"data_version":0}')
    assert _read_quorum_state(path) == (4, 2)
    path.write_text('{"leaderId":-1,"leaderEpoch":5,"votedId":3}')
    assert _read_quorum_state(path) is None
    path.write_text("{half written")
    assert _read_quorum_state(path) is None


def test_an_unknown_node_is_named(settings):
    with pytest.raises(BrokerError, match="no node 4 in this cluster"):
        LocalCluster(settings, 3).node(4)


def test_jvm_options_reach_every_nodes_broker_process_but_not_the_storage_tool(settings, tmp_path):
    cluster = LocalCluster(settings, 3, jvm_options=("-XX:TieredStopAtLevel=1",))
    for node in cluster.nodes.values():
        assert "-XX:TieredStopAtLevel=1" in node.java_cmd("java", tmp_path, "kafka.Kafka", heap=True)
        assert "-XX:TieredStopAtLevel=1" not in node.java_cmd("java", tmp_path, "kafka.tools.StorageTool")
    assert "-XX:TieredStopAtLevel=1" not in LocalCluster(settings, 3).nodes[1].java_cmd("java", tmp_path, "kafka.Kafka", heap=True)
