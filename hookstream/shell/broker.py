"""The local Apache Kafka broker: jars from Maven Central, run on this machine's JDK in KRaft mode.

Nothing here is a stand-in: ``fetch`` asks Maven to copy the runtime jars of
``org.apache.kafka:kafka_2.13`` (see ``ops/kafka/pom.xml``) into the cache dir, ``start`` formats
the storage on first use and runs ``kafka.Kafka`` as a background process, and readiness is a real
metadata request, never a sleep.

Layout under ``HOOKSTREAM_STATE_DIR``::

    kafka-<port>/server.properties   broker + controller config (written on every start)
    kafka-<port>/log4j2.properties
    kafka-<port>/data/               log.dirs (meta.properties once formatted)
    kafka-<port>/broker.pid          the java process, while it runs
    kafka-<port>/logs/server.log     the broker's log; stdout.log for what the JVM prints
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from hookstream.core.errors import BrokerError
from hookstream.core.fsperm import private_dir
from hookstream.core.settings import Settings

READY_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


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


@dataclasses.dataclass(frozen=True)
class BrokerStatus:
    bootstrap: str
    pid: int | None  # our java process, if it is alive
    answering: bool  # a Kafka broker answers a metadata request at the bootstrap address

    @property
    def running(self) -> bool:
        return self.answering


class LocalBroker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.host, self.port = settings.kafka_host_port
        self.controller_port = self.port + 1
        self.paths = BrokerPaths(settings.state_dir / f"kafka-{self.port}")

    # ---------------------------------------------------------------- jars
    @property
    def lib_dir(self) -> Path:
        return self.settings.cache_dir / f"kafka-{self.settings.kafka_version}" / "lib"

    def fetch(self) -> Path:
        """Copy the broker's runtime jars from Maven Central into the cache (once)."""
        stamp = self.lib_dir / ".complete"
        if stamp.exists():
            return self.lib_dir
        mvn = shutil.which("mvn")
        if not mvn:
            raise BrokerError(
                "mvn (Apache Maven) is not installed; it fetches the Kafka jars from Maven Central "
                "(Debian: apt-get install maven)"
            )
        _require_java()
        pom = _pom_path()
        tmp = self.lib_dir.with_name("lib.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True, exist_ok=True)
        cmd = [
            mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={tmp}", f"-Dkafka.version={self.settings.kafka_version}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not any(tmp.glob("kafka_2.13-*.jar")):
            tail = " ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])[:400]
            raise BrokerError(f"could not fetch Kafka {self.settings.kafka_version} jars from Maven Central: {tail}")
        shutil.rmtree(self.lib_dir, ignore_errors=True)
        tmp.rename(self.lib_dir)
        stamp.touch()
        return self.lib_dir

    # ---------------------------------------------------------------- status
    def _read_pid(self) -> int | None:
        try:
            pid = int(self.paths.pid.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _is_our_java(pid, self.paths.root) else None

    def status(self, timeout: float = 3.0) -> BrokerStatus:
        pid = self._read_pid()
        return BrokerStatus(self.settings.kafka_bootstrap, pid, _answers_metadata(self.settings.kafka_bootstrap, timeout))

    # ---------------------------------------------------------------- start
    def start(self, *, owner_pid: int | None = None) -> BrokerStatus:
        """Start the broker unless it already runs. Returns once it answers a metadata request.

        With ``owner_pid`` the broker is stopped when that process ends, however it ends (a
        test session killed by a timeout must not leave a broker behind)."""
        pid = self._read_pid()
        if pid is not None:
            if self._wait_ready(pid, READY_TIMEOUT):
                return BrokerStatus(self.settings.kafka_bootstrap, pid, True)
            raise BrokerError(f"the broker (pid {pid}) runs but does not answer at {self.settings.kafka_bootstrap}; see {self.paths.server_log}")
        if _port_in_use(self.host, self.port):
            if _answers_metadata(self.settings.kafka_bootstrap, 3.0):
                return BrokerStatus(self.settings.kafka_bootstrap, None, True)
            raise BrokerError(
                f"port {self.port} on {self.host} is taken by a process that is not a Kafka broker; "
                f"stop it or set HOOKSTREAM_KAFKA_BOOTSTRAP to a free port"
            )
        if _port_in_use(self.host, self.controller_port):
            raise BrokerError(
                f"the controller port {self.controller_port} (bootstrap port + 1) on {self.host} is taken; "
                f"free it or choose another HOOKSTREAM_KAFKA_BOOTSTRAP port"
            )
        java = _require_java()
        lib = self.fetch()
        self._write_config()
        if not (self.paths.data / "meta.properties").exists():
            self._format(java, lib)
        pid = self._spawn(java, lib)
        if owner_pid is not None:
            _watch_owner(owner_pid, pid)
        if not self._wait_ready(pid, READY_TIMEOUT):
            alive = pid_alive(pid)
            if alive:
                self._kill(pid)
            raise BrokerError(self._explain_failure(pid, alive))
        return BrokerStatus(self.settings.kafka_bootstrap, pid, True)

    def _write_config(self) -> None:
        p = self.paths
        # 0700: the broker's data holds the subscriptions topic (sealed secrets, endpoint URLs)
        private_dir(p.logs)
        private_dir(p.data)
        h = self.host
        p.config.write_text(
            "\n".join(
                [
                    "# written by `hookstream kafka start`; edits are overwritten",
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@{h}:{self.controller_port}",
                    f"listeners=PLAINTEXT://{h}:{self.port},CONTROLLER://{h}:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://{h}:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    f"log.dirs={p.data}",
                    "num.partitions=1",
                    "auto.create.topics.enable=false",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=12",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=12",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    # sized for a 2-core laptop or CI machine
                    "num.network.threads=2",
                    "num.io.threads=2",
                    "num.recovery.threads.per.data.dir=1",
                    "log.cleaner.threads=1",
                    "log.cleaner.backoff.ms=1000",
                    "",
                ]
            )
        )
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

    def _java_cmd(self, java: str, lib: Path, main: str, *args: str, heap: bool = False) -> list[str]:
        cmd = [java]
        if heap:
            cmd += ["-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"]
        cmd += [
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.paths.log4j}",
            f"-Dhookstream.state={self.paths.root}",  # marks the process as ours (see _is_our_java)
            "-cp", f"{lib}/*", main, *args,
        ]
        return cmd

    def _format(self, java: str, lib: Path) -> None:
        cluster_id = subprocess.run(
            self._java_cmd(java, lib, "kafka.tools.StorageTool", "random-uuid"), capture_output=True, text=True
        ).stdout.strip().splitlines()[-1:]
        if not cluster_id:
            raise BrokerError("kafka StorageTool could not make a cluster id; is the jar cache complete? (hookstream kafka fetch)")
        proc = subprocess.run(
            self._java_cmd(java, lib, "kafka.tools.StorageTool", "format", "-t", cluster_id[0], "-c", str(self.paths.config)),
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            msg = " ".join((proc.stdout + proc.stderr).strip().splitlines()[-2:])[:300]
            raise BrokerError(f"could not format {self.paths.data}: {msg}; reset it with `hookstream kafka reset`")

    def _spawn(self, java: str, lib: Path) -> int:
        with open(self.paths.stdout, "ab") as out:
            proc = subprocess.Popen(
                self._java_cmd(java, lib, "kafka.Kafka", str(self.paths.config), heap=True),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.paths.pid.write_text(str(proc.pid))
        return proc.pid

    def _wait_ready(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return False
            if _answers_metadata(self.settings.kafka_bootstrap, 2.0):
                return True
            time.sleep(0.2)
        return False

    def _explain_failure(self, pid: int, was_alive: bool) -> str:
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
                f"the broker's data dir {self.paths.data} looks corrupt or belongs to another cluster; "
                f"reset it with `hookstream kafka reset` (deletes the local broker's data). Log: {self.paths.server_log}"
            )
        if "Address already in use" in text:
            return f"the broker could not bind {self.host}:{self.port} or :{self.controller_port} (address in use)"
        why = "exited" if not was_alive else f"did not answer within {READY_TIMEOUT:.0f}s"
        return f"the broker {why}; see {self.paths.server_log} and {self.paths.stdout}"

    # ---------------------------------------------------------------- stop
    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        """Stop our broker and wait for its process to end. Returns False if none was running."""
        pid = self._read_pid()
        if pid is None:
            self.paths.pid.unlink(missing_ok=True)
            return False
        self._kill(pid, timeout)
        self.paths.pid.unlink(missing_ok=True)
        return True

    def _kill(self, pid: int, timeout: float = STOP_TIMEOUT) -> None:
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            _signal(pid, signal.SIGKILL)
            while pid_alive(pid):
                time.sleep(0.05)

    def reset(self) -> None:
        """Stop the broker and delete its data (the next start formats fresh storage)."""
        self.stop()
        shutil.rmtree(self.paths.data, ignore_errors=True)


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
