"""The local Apache Kafka: jars from Maven Central, run on this machine's JDK in KRaft mode, as one
node or as a replicated cluster of several.

Nothing here is a stand-in: ``fetch`` asks Maven to copy the runtime jars of
``org.apache.kafka:kafka_2.13`` (see ``ops/kafka/pom.xml``) into the cache dir, ``start`` formats
the storage on first use and runs ``kafka.Kafka`` as background processes, and readiness is a real
metadata request, never a sleep.

Ports (P: the port of ``HOOKSTREAM_KAFKA_BOOTSTRAP``'s first address, N: the node count)::

    node i (1..N)   client listener P+i-1, controller listener P+N+i-1
    one node        P and P+1 (today's single broker: ``hookstream kafka start``)
    three nodes     P, P+1, P+2 and controllers P+3, P+4, P+5 (``hookstream kafka start --brokers 3``)

Every node is broker and controller at once; the controllers form a static quorum of all N
voters (``controller.quorum.voters``), so a majority must run for the cluster to accept writes.

Layout under ``HOOKSTREAM_STATE_DIR``::

    kafka-<P>/server.properties   one node: broker + controller config (written on every start)
    kafka-<P>/log4j2.properties
    kafka-<P>/data/               log.dirs (meta.properties once formatted)
    kafka-<P>/broker.pid          the java process, while it runs
    kafka-<P>/logs/server.log     the broker's log; stdout.log for what the JVM prints

    kafka-<P>/cluster.json        N > 1 nodes: {"brokers": N, "cluster_id": ...}; how ``status``,
                                  ``stop`` and ``reset`` find the cluster without being told N
    kafka-<P>/node-<i>/...        node i: the same files as one node's, under its own dir
"""

from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

from hookstream.core.errors import BrokerError
from hookstream.core.fsperm import private_dir
from hookstream.core.settings import Settings

READY_TIMEOUT = 90.0  # one node; a cluster's nodes start together and get twice as long
STOP_TIMEOUT = 30.0
MAX_BROKERS = 5  # every node is also a controller (a voter); more voters only slow elections down
# JVM heaps: one node as before; a cluster's nodes smaller (three of them share a laptop or CI box)
SINGLE_HEAP = ("-Xms256m", "-Xmx768m")
CLUSTER_HEAP = ("-Xms128m", "-Xmx512m")


@dataclasses.dataclass(frozen=True)
class BrokerPaths:
    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def config(self) -> Path:
        return self.root / "server.properties"

    @property
    def log4j(self) -> Path:
        return self.root / "log4j2.properties"

    @property
    def pid(self) -> Path:
        return self.root / "broker.pid"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def stdout(self) -> Path:
        return self.logs / "stdout.log"

    @property
    def server_log(self) -> Path:
        return self.logs / "server.log"

    @property
    def quorum_state(self) -> Path:
        """The node's KRaft election state (leader id and epoch), kept by the node itself."""
        return self.data / "__cluster_metadata-0" / "quorum-state"


@dataclasses.dataclass(frozen=True)
class BrokerStatus:
    bootstrap: str
    pid: int | None  # our java process, if it is alive
    answering: bool  # a Kafka broker answers a metadata request at the bootstrap address

    @property
    def running(self) -> bool:
        return self.answering


@dataclasses.dataclass(frozen=True)
class NodeStatus:
    node_id: int
    port: int  # its client listener
    pid: int | None  # our java process for this node, if it is alive
    alive: bool  # a Kafka broker answers a metadata request at this node's port

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ClusterStatus:
    bootstrap: str  # every node's client address, comma-separated
    brokers: list[NodeStatus]

    @property
    def running(self) -> bool:
        """Every node answers."""
        return bool(self.brokers) and all(n.alive for n in self.brokers)

    @property
    def answering(self) -> bool:
        """At least one node answers (a cluster with a node down still serves)."""
        return any(n.alive for n in self.brokers)


def cluster_ports(port: int, brokers: int) -> list[tuple[int, int, int]]:
    """(node id, client port, controller port) of each node of a cluster whose first port is ``port``."""
    return [(i, port + i - 1, port + brokers + i - 1) for i in range(1, brokers + 1)]


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID, base64url without padding, as ``kafka-storage random-uuid``
    prints it (Kafka refuses ids that start with '-', they read as an option)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def lib_dir(settings: Settings) -> Path:
    return settings.cache_dir / f"kafka-{settings.kafka_version}" / "lib"


def fetch_jars(settings: Settings) -> Path:
    """Copy the broker's runtime jars from Maven Central into the cache (once)."""
    lib = lib_dir(settings)
    stamp = lib / ".complete"
    if stamp.exists():
        return lib
    mvn = shutil.which("mvn")
    if not mvn:
        raise BrokerError(
            "mvn (Apache Maven) is not installed; it fetches the Kafka jars from Maven Central "
            "(Debian: apt-get install maven)"
        )
    _require_java()
    pom = _pom_path()
    tmp = lib.with_name("lib.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={tmp}", f"-Dkafka.version={settings.kafka_version}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not any(tmp.glob("kafka_2.13-*.jar")):
        tail = " ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])[:400]
        raise BrokerError(f"could not fetch Kafka {settings.kafka_version} jars from Maven Central: {tail}")
    shutil.rmtree(lib, ignore_errors=True)
    tmp.rename(lib)
    stamp.touch()
    return lib


class _Node:
    """One Kafka process (broker + controller) of a local cluster: its config, storage and pid."""

    def __init__(self, settings: Settings, node_id: int, root: Path, host: str, port: int, controller_port: int,
                 voters: str, brokers: int, jvm_options: tuple[str, ...] = ()) -> None:
        self.settings = settings
        self.jvm_options = jvm_options
        self.node_id = node_id
        self.host = host
        self.port = port
        self.controller_port = controller_port
        self.voters = voters
        self.brokers = brokers
        self.paths = BrokerPaths(root)
        self.address = _address(host, port)
        # how errors name it: one node stays "the broker", as it always was
        self.name = "the broker" if brokers == 1 else f"node {node_id} ({self.address})"

    # -- state
    def read_pid(self) -> int | None:
        try:
            pid = int(self.paths.pid.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _is_our_java(pid, self.paths.root) else None

    def answering(self, timeout: float) -> bool:
        return _answers_metadata(self.address, timeout)

    def formatted(self) -> bool:
        return (self.paths.data / "meta.properties").exists()

    def status(self, timeout: float) -> NodeStatus:
        return NodeStatus(self.node_id, self.port, self.read_pid(), self.answering(timeout))

    # -- config
    def config_lines(self) -> list[str]:
        h, p = self.host, self.paths
        rf = min(3, self.brokers)  # the internal topics' replication, as `topics ensure` does for ours
        min_isr = max(1, rf - 1)
        return [
            "# written by `hookstream kafka start`; edits are overwritten",
            "process.roles=broker,controller",
            f"node.id={self.node_id}",
            f"controller.quorum.voters={self.voters}",
            f"listeners=PLAINTEXT://{_address(h, self.port)},CONTROLLER://{_address(h, self.controller_port)}",
            f"advertised.listeners=PLAINTEXT://{_address(h, self.port)}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={p.data}",
            "num.partitions=1",
            "auto.create.topics.enable=false",
            f"default.replication.factor={rf}",
            f"min.insync.replicas={min_isr}",
            "unclean.leader.election.enable=false",
            f"offsets.topic.replication.factor={rf}",
            "offsets.topic.num.partitions=12",
            f"transaction.state.log.replication.factor={rf}",
            f"transaction.state.log.min.isr={min_isr}",
            "transaction.state.log.num.partitions=12",
            f"share.coordinator.state.topic.replication.factor={rf}",
            f"share.coordinator.state.topic.min.isr={min_isr}",
            "group.initial.rebalance.delay.ms=0",
            # sized for a 2-core laptop or CI machine
            "num.network.threads=2",
            "num.io.threads=2",
            "num.recovery.threads.per.data.dir=1",
            "log.cleaner.threads=1",
            "log.cleaner.backoff.ms=1000",
            "",
        ]

    def write_config(self) -> None:
        p = self.paths
        # 0700: the broker's data holds the subscriptions topic (sealed secrets, endpoint URLs)
        private_dir(p.logs)
        private_dir(p.data)
        p.config.write_text("\n".join(self.config_lines()))
        p.log4j.write_text(
            "\n".join(
                [
                    "status = error",
                    "appender.file.type = RollingFile",
                    "appender.file.name = FILE",
                    f"appender.file.fileName = {p.server_log}",
                    f"appender.file.filePattern = {p.logs}/server.log.%i",
                    "appender.file.layout.type = PatternLayout",
                    "appender.file.layout.pattern = [%d] %p %m (%c)%n",
                    "appender.file.policies.type = Policies",
                    "appender.file.policies.size.type = SizeBasedTriggeringPolicy",
                    "appender.file.policies.size.size = 20MB",
                    "appender.file.strategy.type = DefaultRolloverStrategy",
                    "appender.file.strategy.max = 3",
                    "rootLogger.level = INFO",
                    "rootLogger.appenderRef.file.ref = FILE",
                    "logger.kafka.name = kafka",
                    "logger.kafka.level = INFO",
                    "logger.state.name = state.change.logger",
                    "logger.state.level = WARN",
                    "",
                ]
            )
        )

    # -- processes
    def java_cmd(self, java: str, lib: Path, main: str, *args: str, heap: bool = False) -> list[str]:
        cmd = [java]
        if heap:
            cmd += [*(SINGLE_HEAP if self.brokers == 1 else CLUSTER_HEAP), "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                    *self.jvm_options]
        cmd += [
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.paths.log4j}",
            f"-Dhookstream.state={self.paths.root}",  # marks the process as ours (see _is_our_java)
            "-cp", f"{lib}/*", main, *args,
        ]
        return cmd

    def format(self, java: str, lib: Path, cluster_id: str) -> None:
        proc = subprocess.run(
            self.java_cmd(java, lib, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.paths.config)),
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            msg = " ".join((proc.stdout + proc.stderr).strip().splitlines()[-2:])[:300]
            raise BrokerError(f"could not format {self.paths.data}: {msg}; reset it with `hookstream kafka reset`")

    def spawn(self, java: str, lib: Path) -> int:
        with open(self.paths.stdout, "ab") as out:
            proc = subprocess.Popen(
                self.java_cmd(java, lib, "kafka.Kafka", str(self.paths.config), heap=True),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.paths.pid.write_text(str(proc.pid))
        return proc.pid

    def check_ports_free(self) -> None:
        """Raise if another process holds this node's ports (a broker found there: BrokerError
        starting with "answering:", which a single node takes as a broker already running)."""
        prefix = "" if self.brokers == 1 else f"node {self.node_id}: "
        if _port_in_use(self.host, self.port):
            if _answers_metadata(self.address, 3.0):
                raise _ForeignBroker(
                    f"{prefix}port {self.port} on {self.host} is taken by a Kafka broker not started by hookstream "
                    f"in {self.paths.root}; stop it or choose another HOOKSTREAM_KAFKA_BOOTSTRAP port"
                )
            raise BrokerError(
                f"{prefix}port {self.port} on {self.host} is taken by a process that is not a Kafka broker; "
                f"stop it or set HOOKSTREAM_KAFKA_BOOTSTRAP to a free port"
            )
        if _port_in_use(self.host, self.controller_port):
            which = "bootstrap port + 1" if self.brokers == 1 else f"bootstrap port + {self.controller_port - self.port + self.node_id - 1}"
            raise BrokerError(
                f"{prefix}the controller port {self.controller_port} ({which}) on {self.host} is taken; "
                f"free it or choose another HOOKSTREAM_KAFKA_BOOTSTRAP port"
            )

    def explain_failure(self, was_alive: bool, timeout: float) -> str:
        text = ""
        for f in (self.paths.server_log, self.paths.stdout):
            try:
                text += f.read_text(errors="replace")[-20000:]
            except FileNotFoundError:
                pass
        corrupt_markers = (
            "meta.properties", "Invalid cluster.id", "CorruptRecordException", "InconsistentClusterIdException",
            "Found directory", "No readable meta", "is not formatted", "KafkaStorageException", "ClusterId",
        )
        if any(m in text for m in corrupt_markers):
            return (
                f"{self.name}: data dir {self.paths.data} looks corrupt or belongs to another cluster; "
                f"reset it with `hookstream kafka reset` (deletes the local broker's data). Log: {self.paths.server_log}"
            ) if self.brokers > 1 else (
                f"the broker's data dir {self.paths.data} looks corrupt or belongs to another cluster; "
                f"reset it with `hookstream kafka reset` (deletes the local broker's data). Log: {self.paths.server_log}"
            )
        if "Address already in use" in text:
            return f"{self.name} could not bind {self.host}:{self.port} or :{self.controller_port} (address in use)"
        why = "exited" if not was_alive else f"did not answer within {timeout:.0f}s"
        return f"{self.name} {why}; see {self.paths.server_log} and {self.paths.stdout}"


class _ForeignBroker(BrokerError):
    """A node's port is served by a Kafka broker that this state dir did not start."""

class LocalCluster:
    """N local Kafka nodes, each broker + controller, on consecutive ports (see the module docstring).

    ``LocalCluster(settings, 1)`` is the single node of ``hookstream kafka start`` (its files right
    under ``kafka-<P>/``); with N > 1 each node lives under ``kafka-<P>/node-<i>/`` and
    ``kafka-<P>/cluster.json`` records N and the cluster id the nodes share.
    ``LocalCluster.discover(settings)`` is whichever of the two the state dir holds at that port.
    """

    def __init__(self, settings: Settings, brokers: int = 3, *, jvm_options: tuple[str, ...] = ()) -> None:
        """``jvm_options``: extra flags for every node's JVM (the test suite's cluster passes
        ``-XX:TieredStopAtLevel=1``: half the CPU to start, on a machine where three JVMs start at
        once beside the suite, for slower steady-state code it does not need)."""
        if not 1 <= brokers <= MAX_BROKERS:
            raise BrokerError(f"a local cluster has 1 to {MAX_BROKERS} brokers, not {brokers}")
        self.settings = settings
        self.size = brokers
        self.host, self.port = settings.kafka_host_port
        self.root = settings.state_dir / f"kafka-{self.port}"
        layout = cluster_ports(self.port, brokers)
        voters = ",".join(f"{i}@{_address(self.host, c)}" for i, _p, c in layout)
        self.nodes: dict[int, _Node] = {
            i: _Node(settings, i, self.root if brokers == 1 else self.root / f"node-{i}", self.host, p, c, voters, brokers,
                     tuple(jvm_options))
            for i, p, c in layout
        }
        self.bootstrap = ",".join(n.address for n in self.nodes.values())
        self._owner_pid: int | None = None
        self.ready_timeout = READY_TIMEOUT if brokers == 1 else 2 * READY_TIMEOUT

    @classmethod
    def discover(cls, settings: Settings) -> "LocalCluster":
        """The local Kafka of this state dir at the settings' port: the cluster ``kafka start
        --brokers N`` made there, else the single node."""
        return cls(settings, recorded_brokers(settings) or 1)

    @property
    def marker(self) -> Path:
        return self.root / "cluster.json"

    @property
    def data_dirs(self) -> list[Path]:
        return [n.paths.data for n in self.nodes.values()]

    def node(self, node_id: int) -> _Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise BrokerError(f"no node {node_id} in this cluster (nodes 1 to {self.size})") from None

    # ---------------------------------------------------------------- status
    def status(self, timeout: float = 3.0) -> ClusterStatus:
        return ClusterStatus(self.bootstrap, [n.status(timeout) for n in self.nodes.values()])

    # ---------------------------------------------------------------- start
    def start(self, *, owner_pid: int | None = None) -> ClusterStatus:
        """Start every node that is not running (all of them, or those a fault stopped) and return
        once every node answers a metadata request and the cluster lists all N brokers.

        With ``owner_pid`` the nodes are stopped when that process ends, however it ends (a test
        session killed by a timeout must not leave brokers behind). A node that fails stops the
        nodes this call started and raises a ``BrokerError`` naming the node and why."""
        if owner_pid is not None:
            self._owner_pid = owner_pid
            _write_owner(self.root, owner_pid)
        running: dict[int, int] = {}
        to_start: list[_Node] = []
        for node in self.nodes.values():
            pid = node.read_pid()
            if pid is not None:
                running[node.node_id] = pid
            else:
                to_start.append(node)
        if to_start:
            try:
                self.check_layout()
                for node in to_start:
                    node.check_ports_free()
            except _ForeignBroker:
                if self.size == 1:  # one node: a broker already serves the bootstrap address (docker, say)
                    return self.status(timeout=2.0)
                raise
            java = _require_java()
            lib = fetch_jars(self.settings)
            self._prepare(to_start, java, lib)
            spawned = {n.node_id: n.spawn(java, lib) for n in to_start}
            running.update(spawned)
            owner = self._owner()
            if owner is not None:
                for pid in spawned.values():
                    _watch_owner(owner, pid)
        else:
            spawned = {}
        try:
            self._wait_ready(running, set(spawned), self.ready_timeout)
        except BrokerError:
            for node_id, pid in spawned.items():
                if pid_alive(pid):
                    _terminate(pid)
                self.nodes[node_id].paths.pid.unlink(missing_ok=True)
            raise
        return ClusterStatus(self.bootstrap, [NodeStatus(i, n.port, running[i], True) for i, n in self.nodes.items()])

    def check_layout(self) -> None:
        """Refuse to mix a single node's data with a cluster's (or clusters of different sizes) at one port."""
        single = BrokerPaths(self.root)
        recorded = recorded_brokers(self.settings)
        if self.size > 1 and (single.data / "meta.properties").exists():
            raise BrokerError(
                f"{self.root} holds a single broker's data; delete it with `hookstream kafka reset` "
                f"or start the cluster on another HOOKSTREAM_KAFKA_BOOTSTRAP port"
            )
        if recorded and recorded != self.size:
            other = LocalCluster(self.settings, recorded)
            if any((d / "meta.properties").exists() for d in other.data_dirs):
                raise BrokerError(
                    f"{self.root} holds a {recorded}-node cluster; start it with `hookstream kafka start` "
                    f"(or --brokers {recorded}), or delete it with `hookstream kafka reset`"
                )
            if self.size == 1:
                self.marker.unlink(missing_ok=True)

    def _prepare(self, nodes: list[_Node], java: str, lib: Path) -> None:
        """Write every node's config; format the storage of those never formatted, in parallel (one
        JVM each), with the cluster id they all share."""
        for node in nodes:
            node.write_config()
        fresh = [n for n in nodes if not n.formatted()]
        if not fresh:
            return
        cluster_id = self._cluster_id()
        with concurrent.futures.ThreadPoolExecutor(len(fresh)) as pool:
            for future in [pool.submit(n.format, java, lib, cluster_id) for n in fresh]:
                future.result()

    def _cluster_id(self) -> str:
        if self.size == 1:
            return new_cluster_id()
        recorded = _read_marker(self.root)
        cluster_id = recorded.get("cluster_id") if recorded.get("brokers") == self.size else None
        if not cluster_id:
            cluster_id = new_cluster_id()
            private_dir(self.root)
            self.marker.write_text(json.dumps({"brokers": self.size, "cluster_id": cluster_id}) + "\n")
        return cluster_id

    def _owner(self) -> int | None:
        owner = self._owner_pid or _read_owner(self.root)
        return owner if owner is not None and pid_alive(owner) else None

    def _wait_ready(self, pids: dict[int, int], spawned: set[int], timeout: float) -> None:
        """Until every node answers at its port and metadata lists all of them (each has joined)."""
        deadline = time.monotonic() + timeout
        waiting = dict(pids)
        while True:
            for node_id, pid in list(waiting.items()):
                node = self.nodes[node_id]
                if not pid_alive(pid):
                    raise BrokerError(node.explain_failure(False, timeout))
                if node.answering(2.0):
                    del waiting[node_id]
            if not waiting and (self.size == 1 or len(_live_broker_ids(self.bootstrap, 5.0)) >= self.size):
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        late = self.nodes[min(waiting)] if waiting else None
        if late is None:
            raise BrokerError(f"the cluster at {self.bootstrap} did not list all {self.size} brokers within {timeout:.0f}s; "
                              f"see the nodes' logs under {self.root}")
        if late.node_id not in spawned:  # running before this start
            raise BrokerError(f"{late.name} (pid {pids[late.node_id]}) runs but does not answer at {late.address}; see {late.paths.server_log}")
        raise BrokerError(late.explain_failure(True, timeout))

    def start_node(self, node_id: int, timeout: float = READY_TIMEOUT) -> None:
        """Bring one node back (after ``kill``) and wait until it answers and has rejoined."""
        node = self.node(node_id)
        pid = node.read_pid()
        if pid is None:
            node.check_ports_free()
            java = _require_java()
            lib = fetch_jars(self.settings)
            self._prepare([node], java, lib)
            pid = node.spawn(java, lib)
            owner = self._owner()
            if owner is not None:
                _watch_owner(owner, pid)
        deadline = time.monotonic() + timeout
        while not node.answering(2.0) or node_id not in _live_broker_ids(self.bootstrap, 5.0):
            if not pid_alive(pid):
                raise BrokerError(node.explain_failure(False, timeout))
            if time.monotonic() > deadline:
                raise BrokerError(node.explain_failure(True, timeout))
            time.sleep(0.2)

    # ---------------------------------------------------------------- faults and roles
    def kill(self, node_id: int, sig: int = signal.SIGKILL, *, wait: bool = True) -> None:
        """Send ``sig`` to one node's process (SIGKILL: a crash); with ``wait``, return once the
        process is gone (bounded by STOP_TIMEOUT for a SIGTERM's controlled shutdown)."""
        node = self.node(node_id)
        pid = node.read_pid()
        if pid is None:
            raise BrokerError(f"node {node_id} ({node.address}) is not running")
        _signal(pid, sig)
        if wait:
            deadline = time.monotonic() + STOP_TIMEOUT
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)

    def active_controller(self, timeout: float = 60.0) -> int:
        """The node id of the KRaft quorum's leader (the active controller), a live node.

        Read from the election state each node keeps (``__cluster_metadata-0/quorum-state``: the
        leader it follows and that leader's epoch): the newest epoch among the live nodes, once a
        live node leads it. Right after the leader dies the others still name it until they have
        elected another (a few seconds): this waits for that, up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            live = {i: n for i, n in self.nodes.items() if n.read_pid() is not None}
            best: tuple[int, int] | None = None  # (epoch, leader)
            for node in live.values():
                state = _read_quorum_state(node.paths.quorum_state)
                if state is not None and (best is None or state[0] > best[0]):
                    best = state
            if best is not None and best[1] in live:
                return best[1]
            if time.monotonic() > deadline:
                raise BrokerError(f"no live node of the cluster at {self.bootstrap} leads the KRaft quorum after {timeout:.0f}s")
            time.sleep(0.2)

    def partition_leader(self, topic: str, partition: int = 0, timeout: float = 60.0) -> int:
        """The node id leading ``topic``'s ``partition``, as the cluster's metadata names it once
        that is a live node (after a leader dies, the controller moves leadership when the dead
        broker's session expires: ``broker.session.timeout.ms``, 9 s)."""
        deadline = time.monotonic() + timeout
        while True:
            live = [n.address for n in self.nodes.values() if n.read_pid() is not None]
            leader = _partition_leader(",".join(live) or self.bootstrap, topic, partition)
            if leader in self.nodes and self.nodes[leader].read_pid() is not None:
                return leader
            if time.monotonic() > deadline:
                raise BrokerError(f"no live node leads {topic}[{partition}] at {self.bootstrap} after {timeout:.0f}s")
            time.sleep(0.2)

    # ---------------------------------------------------------------- stop
    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        """Stop every node (all at once: stopped one by one, the last ones would wait for a quorum
        that is gone) and wait for their processes to end. False if none was running."""
        pids = {i: n.read_pid() for i, n in self.nodes.items()}
        alive = [pid for pid in pids.values() if pid is not None]
        for pid in alive:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(pid_alive(p) for p in alive) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in alive:
            if pid_alive(pid):
                _signal(pid, signal.SIGKILL)
        for pid in alive:
            while pid_alive(pid):
                time.sleep(0.05)
        for node in self.nodes.values():
            node.paths.pid.unlink(missing_ok=True)
        return bool(alive)

    def reset(self) -> None:
        """Stop every node and delete its data (the next start formats fresh storage, with a new
        cluster id; the node count stays recorded, so ``kafka start`` starts N nodes again)."""
        self.stop()
        for data in self.data_dirs:
            shutil.rmtree(data, ignore_errors=True)
        if self.size > 1:
            private_dir(self.root)
            self.marker.write_text(json.dumps({"brokers": self.size}) + "\n")


class LocalBroker:
    """The single node (``hookstream kafka start``): a one-node ``LocalCluster`` with the API the
    dev stack and the bench use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cluster = LocalCluster(settings, 1)
        self._node = self.cluster.nodes[1]
        self.host, self.port = settings.kafka_host_port
        self.controller_port = self.port + 1
        self.paths = self._node.paths

    @property
    def lib_dir(self) -> Path:
        return lib_dir(self.settings)

    def fetch(self) -> Path:
        return fetch_jars(self.settings)

    def _read_pid(self) -> int | None:
        return self._node.read_pid()

    def _write_config(self) -> None:
        self._node.write_config()

    def status(self, timeout: float = 3.0) -> BrokerStatus:
        return BrokerStatus(self.settings.kafka_bootstrap, self._read_pid(), _answers_metadata(self.settings.kafka_bootstrap, timeout))

    def start(self, *, owner_pid: int | None = None) -> BrokerStatus:
        """Start the broker unless it already runs. Returns once it answers a metadata request."""
        st = self.cluster.start(owner_pid=owner_pid)
        return BrokerStatus(self.settings.kafka_bootstrap, st.brokers[0].pid, st.brokers[0].alive)

    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        return self.cluster.stop(timeout)

    def reset(self) -> None:
        self.cluster.reset()


def recorded_brokers(settings: Settings) -> int | None:
    """N, when ``kafka-<P>/cluster.json`` records a cluster of N nodes at the settings' port."""
    root = settings.state_dir / f"kafka-{settings.kafka_host_port[1]}"
    brokers = _read_marker(root).get("brokers")
    return brokers if isinstance(brokers, int) and 1 < brokers <= MAX_BROKERS else None


def _read_marker(root: Path) -> dict:
    try:
        doc = json.loads((root / "cluster.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _write_owner(root: Path, owner_pid: int) -> None:
    private_dir(root)
    (root / "owner.pid").write_text(str(owner_pid))


def _read_owner(root: Path) -> int | None:
    try:
        return int((root / "owner.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _read_quorum_state(path: Path) -> tuple[int, int] | None:
    """(leader epoch, leader id) from a node's quorum-state file; None while it follows no leader."""
    try:
        doc = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    leader, epoch = doc.get("leaderId"), doc.get("leaderEpoch")
    if not isinstance(leader, int) or not isinstance(epoch, int) or leader < 0:
        return None
    return epoch, leader


def _live_broker_ids(bootstrap: str, timeout: float) -> set[int]:
    """The brokers the cluster's metadata lists (KRaft lists only registered, unfenced brokers)."""
    from hookstream.core.kafka import make_admin

    admin = make_admin(Settings(kafka_bootstrap=bootstrap), **{"socket.connection.setup.timeout.ms": 1000, "log_level": 0})
    try:
        return set(admin.list_topics(timeout=timeout).brokers)
    except Exception:
        return set()


def _partition_leader(bootstrap: str, topic: str, partition: int) -> int:
    from hookstream.core.kafka import make_admin

    admin = make_admin(Settings(kafka_bootstrap=bootstrap), **{"socket.connection.setup.timeout.ms": 1000, "log_level": 0})
    try:
        md = admin.list_topics(topic=topic, timeout=5.0)
    except Exception:
        return -1
    found = md.topics.get(topic)
    if found is None or found.error is not None or partition not in found.partitions:
        return -1
    return found.partitions[partition].leader


def _terminate(pid: int, timeout: float = STOP_TIMEOUT) -> None:
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        _signal(pid, signal.SIGKILL)
        while pid_alive(pid):
            time.sleep(0.05)


# ---------------------------------------------------------------------- helpers
def _pom_path() -> Path:
    pom = Path(__file__).resolve().parents[2] / "ops" / "kafka" / "pom.xml"
    if not pom.exists():
        raise BrokerError(f"{pom} is missing; the local broker is fetched from a source checkout of hookstream")
    return pom


_WATCHDOG = """
import os, signal, sys, time
owner, broker = int(sys.argv[1]), int(sys.argv[2])
def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
while alive(owner) and alive(broker):
    time.sleep(1)
if alive(broker):
    os.kill(broker, signal.SIGTERM)
    for _ in range(300):
        if not alive(broker):
            break
        time.sleep(0.1)
    else:
        os.kill(broker, signal.SIGKILL)
"""


def _watch_owner(owner_pid: int, broker_pid: int) -> None:
    """A tiny detached process that stops the broker once ``owner_pid`` is gone."""
    import sys

    subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(owner_pid), str(broker_pid)],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _require_java() -> str:
    java = shutil.which("java", path=os.path.join(os.environ["JAVA_HOME"], "bin")) if os.environ.get("JAVA_HOME") else None
    java = java or shutil.which("java")
    if not java:
        raise BrokerError("java is not installed; the local Kafka broker needs a JDK 17 or newer (Debian: apt-get install openjdk-17-jdk-headless)")
    return java


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child (started by this very process) counts as dead
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def _is_our_java(pid: int, root: Path) -> bool:
    """The pid is alive and is the java process started for this state dir (not a recycled pid)."""
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return True  # no /proc (macOS): trust the pid file
    return f"-Dhookstream.state={root}".encode() in cmdline


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _answers_metadata(bootstrap: str, timeout: float) -> bool:
    """A Kafka broker answers a metadata request at ``bootstrap``."""
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    if not _port_in_use(host.strip("[]"), int(port)):
        return False
    from hookstream.core.kafka import make_admin  # slow import (confluent-kafka); not needed for the port check

    admin = make_admin(Settings(kafka_bootstrap=bootstrap), **{"socket.connection.setup.timeout.ms": 1000, "log_level": 0})
    try:
        md = admin.list_topics(timeout=timeout)
        return bool(md.brokers)
    except Exception:
        return False
