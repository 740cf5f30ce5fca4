"""The local stack behind ``hookstream dev up``: broker, topics, stream workers, delivery workers,
the HTTP API.

Each part runs as its own process (its own metrics port, its own log file) started in order and
stopped in reverse order. Workers of one kind are numbered (``streams-1``, ``delivery-1``,
``delivery-2`` ...) and take consecutive metrics ports from their kind's first port. What runs
is written to ``<state dir>/dev/stack.json`` (names, pids, ports, log paths) so ``dev status``
and ``dev down`` work from another terminal, and so a process that died is reported rather than
hidden; ``<state dir>/dev/prometheus.yml`` is a Prometheus config scraping every worker started.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from hookstream.shell.broker import LocalBroker, pid_alive
from hookstream.core.errors import HookstreamError, ValidationError
from hookstream.core.fsperm import private_dir
from hookstream.core.settings import Settings
from hookstream.core.topics import DELIVERIES, EVENT_TOPICS, ensure_topics, topic_specs

STOP_TIMEOUT = 8.0  # per process; Ctrl-C must stop the whole stack within 30 s
READY_TIMEOUT = 90.0
ALERTS = Path(__file__).resolve().parents[2] / "ops" / "prometheus" / "alerts.yml"  # in a source checkout


@dataclasses.dataclass
class StackProcess:
    name: str
    pid: int
    cmd: list[str]
    log: str
    metrics_port: int | None = None
    port: int | None = None

    @property
    def metrics_url(self) -> str | None:
        return f"http://127.0.0.1:{self.metrics_port}/metrics" if self.metrics_port else None

    @property
    def url(self) -> str | None:
        """Where it serves (the API, the receiver), or its metrics."""
        return f"http://127.0.0.1:{self.port}/" if self.port else self.metrics_url

    @property
    def alive(self) -> bool:
        return _alive(self.pid, self.cmd)


@dataclasses.dataclass
class StackState:
    bootstrap: str
    broker_started_here: bool
    processes: list[StackProcess] = dataclasses.field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "StackState":
        raw = json.loads(text)
        return cls(raw["bootstrap"], raw["broker_started_here"], [StackProcess(**p) for p in raw["processes"]])


def _alive(pid: int, cmd: list[str]) -> bool:
    """Alive, not a zombie, and still the process we started (not a recycled pid)."""
    if not pid_alive(pid):
        return False
    try:
        return cmd[-1].encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return True  # no /proc: trust the pid


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class DevStack:
    def __init__(self, settings: Settings, env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.dir = settings.state_dir / "dev"
        self.state_file = self.dir / "stack.json"
        self.env = dict(os.environ if env is None else env)

    # ------------------------------------------------------------------ state
    def load(self) -> StackState | None:
        try:
            return StackState.from_json(self.state_file.read_text())
        except FileNotFoundError:
            return None

    def _save(self, state: StackState) -> None:
        private_dir(self.dir)
        self.state_file.write_text(state.to_json())

    # ------------------------------------------------------------------ up
    def up(self, *, streams_metrics_port: int, delivery_metrics_port: int, api_port: int | None = None,
           before_workers=None, stream_workers: int = 1, delivery_workers: int = 1) -> StackState:
        """Start everything in order; return once every process is ready. Raises (after
        stopping what it started) when a part cannot start. ``stream_workers`` and
        ``delivery_workers`` processes take consecutive metrics ports from the given ones."""
        existing = self.load()
        if existing and any(p.alive for p in existing.processes):
            raise HookstreamError(f"a dev stack is already running (see `hookstream dev status`); stop it with `hookstream dev down`")
        streams_ports, delivery_ports = plan_metrics_ports(streams_metrics_port, stream_workers, delivery_metrics_port,
                                                           delivery_workers, api_port=api_port)
        for port in (*streams_ports, *delivery_ports):
            if not port_free(port):
                raise HookstreamError(f"metrics port {port} is taken; choose others with --streams-metrics-port/--delivery-metrics-port")
        if api_port is not None and not port_free(api_port):
            raise HookstreamError(f"the API's port {api_port} is taken; choose another with --api-port")
        broker = LocalBroker(self.settings)
        before = broker.status(timeout=2.0)
        broker.start()
        state = StackState(self.settings.kafka_bootstrap, broker_started_here=not before.answering)
        self._save(state)
        try:
            ensure_topics(self.settings)
            # e.g. the demo: a subscription and a receiver, once the broker and topics are there
            for name, args, port in (before_workers(self.settings) if before_workers else ()):
                state.processes.append(self._spawn(name, args, port=port))
                self._save(state)
            for kind, ports in (("streams", streams_ports), ("delivery", delivery_ports)):
                for i, port in enumerate(ports, 1):
                    state.processes.append(self._spawn(f"{kind}-{i}", [kind, "worker", "--metrics-port", str(port)], metrics_port=port))
                    self._save(state)
            self.write_prometheus_config(state)
            if api_port is not None:
                state.processes.append(self._spawn("api", ["api", "--host", "127.0.0.1", "--port", str(api_port)], port=api_port))
                self._save(state)
            self._wait_ready(state)
        except BaseException:
            self.down(state)
            raise
        return state

    def _spawn(self, name: str, args: list[str], *, metrics_port: int | None = None, port: int | None = None) -> StackProcess:
        private_dir(self.dir)
        log = self.dir / f"{name}.log"
        cmd = [sys.executable, "-m", "hookstream", *args]
        with open(log, "ab") as out:
            proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        return StackProcess(name, proc.pid, cmd, str(log), metrics_port, port)

    def _wait_ready(self, state: StackState) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        pending = list(state.processes)
        while pending:
            for p in list(pending):
                if not p.alive:
                    raise HookstreamError(f"the {p.name} process exited while starting; see {p.log}")
                if _answers(p):
                    pending.remove(p)
            if pending and time.monotonic() > deadline:
                raise HookstreamError(f"{', '.join(p.name for p in pending)} not ready after {READY_TIMEOUT:.0f}s; see {pending[0].log}")
            time.sleep(0.2)

    # ------------------------------------------------------------------ down
    def down(self, state: StackState | None = None) -> list[str]:
        """Stop every process in reverse order (SIGTERM, then SIGKILL after a grace period) and
        the broker if ``dev up`` started it. Returns what was stopped."""
        state = state or self.load()
        if state is None:
            return []
        stopped = []
        for p in reversed(state.processes):
            if p.alive:
                _terminate(p)
                stopped.append(p.name)
        if state.broker_started_here:
            if LocalBroker(self.settings).stop():
                stopped.append("kafka")
        self.state_file.unlink(missing_ok=True)
        self.prometheus_config.unlink(missing_ok=True)
        return stopped

    # ------------------------------------------------------------------ monitoring
    @property
    def prometheus_config(self) -> Path:
        return self.dir / "prometheus.yml"

    def write_prometheus_config(self, state: StackState) -> Path:
        """A Prometheus config with one target per worker of the stack, the jobs of
        ops/prometheus/prometheus.yml (``prometheus --config.file=<this file>``). JSON is YAML."""
        jobs: dict[str, list[str]] = {}
        for p in state.processes:
            kind = p.name.split("-", 1)[0]
            if p.metrics_port and kind in ("streams", "delivery"):
                jobs.setdefault(f"hookstream-{kind}", []).append(f"127.0.0.1:{p.metrics_port}")
        doc: dict = {"global": {"scrape_interval": "15s", "evaluation_interval": "15s"}}
        if ALERTS.is_file():
            doc["rule_files"] = [str(ALERTS)]
        doc["scrape_configs"] = [{"job_name": job, "static_configs": [{"targets": targets}]} for job, targets in jobs.items()]
        private_dir(self.dir)
        self.prometheus_config.write_text(json.dumps(doc, indent=2) + "\n")
        return self.prometheus_config

    def dead(self, state: StackState) -> list[StackProcess]:
        return [p for p in state.processes if not p.alive]


def plan_metrics_ports(streams_first: int, stream_workers: int, delivery_first: int, delivery_workers: int,
                       *, api_port: int | None = None) -> tuple[list[int], list[int]]:
    """The metrics ports of the stream and delivery workers: consecutive from each kind's first.
    Raises ``ValidationError`` (one line) for a count below 1, a port out of range, or ranges
    that overlap each other or the API's port."""
    for option, count in (("--stream-workers", stream_workers), ("--delivery-workers", delivery_workers)):
        if count < 1:
            raise ValidationError(f"{option} must be at least 1, not {count}")
    ranges = {}
    for option, first, count in (("--streams-metrics-port", streams_first, stream_workers),
                                 ("--delivery-metrics-port", delivery_first, delivery_workers)):
        if not 1 <= first or first + count - 1 > 65535:
            raise ValidationError(f"{option} {first} with {count} worker(s) needs ports {first}-{first + count - 1}, outside 1-65535")
        ranges[option] = list(range(first, first + count))
    streams, delivery = ranges.values()
    if set(streams) & set(delivery):
        raise ValidationError(f"the stream workers' metrics ports {_span(streams)} overlap the delivery workers' {_span(delivery)}; "
                              f"move one with --streams-metrics-port or --delivery-metrics-port")
    if api_port is not None and api_port in (*streams, *delivery):
        raise ValidationError(f"the API's port {api_port} is one of the workers' metrics ports ({_span(streams)}, {_span(delivery)}); choose another with --api-port")
    return streams, delivery


def _span(ports: list[int]) -> str:
    return str(ports[0]) if len(ports) == 1 else f"{ports[0]}-{ports[-1]}"


def idle_workers(settings: Settings, *, stream_workers: int, delivery_workers: int) -> list[str]:
    """One line per kind of worker whose count exceeds its topics' partitions: a consumer group
    gives each partition to one member, so the members past that count get none and idle."""
    partitions = {spec.name: spec.partitions for spec in topic_specs(settings)}
    event_partitions = min(partitions[name] for name in EVENT_TOPICS.values())
    out = []
    if stream_workers > event_partitions:
        out.append(f"warning: {stream_workers} stream workers but {event_partitions} partitions per event topic: "
                   f"{stream_workers - event_partitions} will idle")
    if delivery_workers > partitions[DELIVERIES]:
        out.append(f"warning: {delivery_workers} delivery workers but {partitions[DELIVERIES]} partitions of {DELIVERIES}: "
                   f"{delivery_workers - partitions[DELIVERIES]} will idle")
    return out


def _answers(p: StackProcess) -> bool:
    url = p.metrics_url or (f"http://127.0.0.1:{p.port}/{'healthz' if p.name == 'api' else ''}" if p.port else None)
    if url is None:
        return True
    try:
        urllib.request.urlopen(url, timeout=1).read(1)
        return True
    except urllib.error.HTTPError:
        return True  # it answers, just not 2xx on "/"
    except OSError:
        return False


def _terminate(p: StackProcess) -> None:
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while p.alive and time.monotonic() < deadline:
        _reap(p.pid)
        time.sleep(0.1)
    if p.alive:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while p.alive:
            _reap(p.pid)
            time.sleep(0.05)
    _reap(p.pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def follow_outcomes(settings: Settings, emit, stop, *, interval: float = 0.5) -> None:
    """Call ``emit(row)`` for every delivery attempt the attempt log records from now on,
    until ``stop()`` is true. Reads the table with plain SQL: it may not exist yet (the
    delivery worker creates it on start)."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from hookstream.core.db import make_engine

    engine = make_engine(settings.database_url, all_tenants=True)  # the demo shows every tenant's outcomes
    last = None
    query = text(
        "select id, attempted_at, status, http_status, event_type, tenant_id, subscription_id, delivery_id,"
        " attempt, duration_ms, error from delivery_attempts where id > :last order by id limit 1000"
    )
    while not stop():
        try:
            with engine.connect() as conn:
                if last is None:
                    last = conn.execute(text("select coalesce(max(id), 0) from delivery_attempts")).scalar_one()
                rows = conn.execute(query, {"last": last}).mappings().all()
        except DBAPIError:
            rows = []
        for row in rows:
            last = row["id"]
            emit(dict(row))
        if not rows:
            time.sleep(interval)
    engine.dispose()


def format_outcome(row: dict) -> str:
    at = row["attempted_at"]
    at = at.strftime("%H:%M:%S") if hasattr(at, "strftime") else str(at)[11:19]
    http = row["http_status"] if row["http_status"] is not None else "-"
    err = f" error={row['error']}" if row.get("error") else ""
    return (
        f"{at} {row['status']:<9} {http!s:>3} {row['event_type']:<22} tenant={row['tenant_id']} "
        f"sub={row['subscription_id']} webhook-id={row['delivery_id']} attempt={row['attempt']} "
        f"{row['duration_ms']:.0f}ms{err}"
    )
