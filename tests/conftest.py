"""Shared fixtures.

The Kafka fixtures use a real Apache Kafka broker: the one ``HOOKSTREAM_KAFKA_BOOTSTRAP`` points
at when it answers, otherwise one this session starts with hookstream's own ``LocalBroker`` on a
free port, with its state in a temporary dir, and stops at the end. Each test gets its own topic
prefix and group ids, so tests never see each other's records.
"""

from __future__ import annotations

import os
import random
import socket
import uuid
from pathlib import Path

import pytest

from hookstream.shell.broker import LocalBroker, LocalCluster, _answers_metadata
from hookstream.core.errors import BrokerError
from hookstream.core.settings import Settings


def _free_ports(count: int) -> int:
    """A port p such that p .. p+count-1 are all free. Drawn below the kernel's ephemeral range
    (32768+ on Linux): a port the kernel hands out would be free now, yet p+1 could be taken by any
    outgoing connection before the broker binds it (a CI run lost a test to that)."""
    for _ in range(200):
        port = random.randrange(20000, 32000 - count)
        if all(_bindable(port + i) for i in range(count)):
            return port
    raise RuntimeError(f"no {count} consecutive free ports found")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port_pair() -> int:
    """A port p such that p and p+1 (the controller) are both free."""
    return _free_ports(2)


def start_own_broker(env: dict[str, str]) -> LocalBroker:
    """Start a broker of the caller's own (one it may kill) on a free port pair, under
    ``env["HOOKSTREAM_STATE_DIR"]``; ``env["HOOKSTREAM_KAFKA_BOOTSTRAP"]`` is set to it. A port
    found free can be taken before the broker binds it: up to three tries. Stop it when done."""
    for attempt in range(3):
        env["HOOKSTREAM_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{_free_port_pair()}"
        broker = LocalBroker(Settings.from_env(env))
        try:
            broker.start(owner_pid=os.getpid())
            return broker
        except BrokerError as exc:
            if "address in use" not in str(exc) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`make test`: ``-n 2 --dist loadgroup``), a test file runs in one process
    (its module fixtures are made once), and every test on the three-node cluster runs in the same
    process (one cluster per session, not one per process)."""
    for item in items:
        on_cluster = item.get_closest_marker("cluster") is not None or "kafka_cluster" in getattr(item, "fixturenames", ())
        item.add_marker(pytest.mark.xdist_group("kafka-cluster" if on_cluster else item.nodeid.split("::", 1)[0]))


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The bootstrap address of a real, running Kafka broker for this test session."""
    given = os.environ.get("HOOKSTREAM_KAFKA_BOOTSTRAP")
    if given and _answers_metadata(given, 5.0):
        yield given
        return
    from hookstream.core.errors import BrokerError

    for attempt in range(3):  # a free port can be taken by someone else before the broker binds it
        port = _free_port_pair()
        env = dict(os.environ)
        env["HOOKSTREAM_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{port}"
        env["HOOKSTREAM_STATE_DIR"] = str(tmp_path_factory.mktemp("kafka-state"))
        broker = LocalBroker(Settings.from_env(env))
        try:
            broker.start(owner_pid=os.getpid())  # stopped even if this session is killed
            break
        except BrokerError as exc:
            if "address in use" not in str(exc) or attempt == 2:
                raise
    try:
        yield broker.settings.kafka_bootstrap
    finally:
        broker.stop()


QUICK_JVM = ("-XX:TieredStopAtLevel=1",)


def start_local_cluster(state_dir: Path, brokers: int = 3) -> LocalCluster:
    """A running ``LocalCluster`` of ``brokers`` nodes on 2N free consecutive ports, its state under
    ``state_dir``, stopped when this process ends however it ends (``owner_pid``)."""
    from hookstream.core.errors import BrokerError

    for attempt in range(3):  # a free port can be taken by someone else before a node binds it
        port = _free_ports(2 * brokers)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKSTREAM_") or k == "HOOKSTREAM_CACHE_DIR"}
        env.update(HOOKSTREAM_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}", HOOKSTREAM_STATE_DIR=str(state_dir / f"try-{attempt}"))
        # C1 only: half the CPU to start three JVMs beside the suite (unit test: test_broker_cluster.py)
        cluster = LocalCluster(Settings.from_env(env), brokers, jvm_options=QUICK_JVM)
        try:
            cluster.start(owner_pid=os.getpid())
            return cluster
        except BrokerError as exc:
            cluster.stop()
            if "address in use" not in str(exc) and "is taken" not in str(exc) or attempt == 2:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> LocalCluster:
    """A real three-node Kafka cluster (KRaft, every node broker + controller) for this session,
    started the first time a test asks for it (~20-40 s) and stopped at the end. Its
    ``.bootstrap`` lists all three nodes. A test that kills a node brings it back
    (``start_node``), or calls ``start()``, which restarts whichever nodes are down."""
    cluster = start_local_cluster(tmp_path_factory.mktemp("kafka-cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_env(kafka_cluster: LocalCluster, topic_prefix: str, tmp_path: Path) -> dict[str, str]:
    """``hs_env`` for the session's cluster: its three nodes, this test's prefix and state. Every
    node runs when the test starts (a node an earlier test killed is started again)."""
    kafka_cluster.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKSTREAM_")}
    env.update(
        HOOKSTREAM_KAFKA_BOOTSTRAP=kafka_cluster.bootstrap,
        HOOKSTREAM_TOPIC_PREFIX=topic_prefix,
        HOOKSTREAM_STATE_DIR=str(tmp_path / "state"),
        HOOKSTREAM_DATABASE_URL=f"sqlite:///{tmp_path / 'hookstream.db'}",
    )
    return env


@pytest.fixture
def cluster_settings(cluster_env: dict[str, str]) -> Settings:
    return Settings.from_env(cluster_env)


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def hs_env(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> dict[str, str]:
    """Environment for a hookstream process in this test: the session broker, own prefix, own state."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKSTREAM_")}
    env.update(
        HOOKSTREAM_KAFKA_BOOTSTRAP=kafka_bootstrap,
        HOOKSTREAM_TOPIC_PREFIX=topic_prefix,
        HOOKSTREAM_STATE_DIR=str(tmp_path / "state"),
        HOOKSTREAM_DATABASE_URL=f"sqlite:///{tmp_path / 'hookstream.db'}",
    )
    return env


@pytest.fixture
def settings(hs_env: dict[str, str]) -> Settings:
    return Settings.from_env(hs_env)


@pytest.fixture
def group_id() -> str:
    return f"g-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for this session (skips, naming the package, where none is installed)."""
    from tests.postgres import PostgresServer, find_pg_bin

    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (Debian package 'postgresql'; `make test` installs it as root)")
    server = PostgresServer(bin_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    return postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path) -> str:
    """Runs a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def loopback_env(hs_env: dict[str, str]) -> dict[str, str]:
    """``hs_env`` that lets subscriptions point at receivers on 127.0.0.1 over plain http."""
    return dict(hs_env, HOOKSTREAM_ALLOW_HTTP="1", HOOKSTREAM_ALLOWED_NETWORKS="127.0.0.0/8")


@pytest.fixture
def loopback_settings(loopback_env: dict[str, str]) -> Settings:
    """Settings for ``loopback_env``, with every pipeline topic created."""
    from hookstream.core.topics import ensure_topics

    s = Settings.from_env(loopback_env)
    ensure_topics(s)
    return s


@pytest.fixture(scope="module")
def promtool() -> str:
    """Prometheus' promtool (Debian package 'prometheus'; `make test` installs it as root)."""
    from tests.monitoring import PROMETHEUS_PACKAGE, find_tool

    path = find_tool("promtool")
    if path is None:
        pytest.skip(f"promtool is not installed ({PROMETHEUS_PACKAGE})")
    return path


def pytest_terminal_summary(terminalreporter) -> None:
    """The fault suite's figures (tests/faults/conftest.py ``chaos_report``), one line per scenario."""
    lines = [
        value
        for outcome in ("passed", "failed", "xfailed", "xpassed")
        for report in terminalreporter.stats.get(outcome, [])
        if getattr(report, "when", None) == "call"
        for key, value in getattr(report, "user_properties", ())
        if key == "chaos_figures"  # tests/faults/conftest.py
    ]
    if lines:
        terminalreporter.section("fault suite figures (hookstream chaos --size short)")
        for line in lines:
            terminalreporter.write_line(line)
