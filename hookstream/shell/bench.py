"""``hookstream bench``: end-to-end speed on this machine, side by side with the Celery + Redis design (one task per delivery).

Everything runs here, each part in its own process: a FRESH local broker (own state dir and
port; with ``brokers`` > 1 a fresh ``LocalCluster`` of that many nodes, topics replicated on
``min(3, brokers)``), the real workers (``hookstream streams worker`` x M, ``hookstream delivery worker`` x N), the
loopback receiver (``bench/receiver.py``), and this process publishing with
``producers.Publisher``. Latency is publish -> acknowledged POST: the event's ``occurred_at``
(stamped by ``Event.new`` right before it is sent) to the time the receiver wrote its 204.

Scenarios, in this order:

throughput  N events as fast as the publisher goes, fan-out 1 (100 tenants with one endpoint
            each); deliveries/s from the first publish to the last acknowledged POST.
latency     a fixed offered rate (default 1,000 deliveries/s) for a fixed time, fan-out 1;
            p50/p95/p99 publish -> ack of the events published after a warm-up (5 s at the
            same rate: the first seconds after a burst or a start are slower, and are
            reported apart, with p50/p99 per 5 s window).
fanout      events of a tenant with 50 endpoints, as fast as the publisher goes; deliveries/s
            and the time until an event reached all 50.
isolation   the latency scenario's rate over 10 healthy endpoints, first alone, then with an
            11th endpoint that never answers (its requests hang until the request timeout);
            healthy p99 with and without the hung one.
baseline    the workers and the broker stopped; Redis + Celery (``bench/baselines/celery_redis``,
            one task per delivery, default prefork pool, concurrency = nproc), the same events,
            signing and receiver: throughput and latency as above.

Needs a source checkout (``bench/`` is not installed with the package), a JDK (the broker), and
for the baseline ``redis-server`` plus the ``bench`` extra (celery, redis); ``make bench``
installs them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from hookstream.core.errors import HookstreamError
from hookstream.shell.machine import cpu_model, usable_cores

REPO = Path(__file__).resolve().parents[2]
RECEIVER = REPO / "bench" / "receiver.py"
BASELINES = REPO / "bench" / "baselines"
EVENT_TYPE = "payment.received"

Progress = Callable[[str, int, int], None]


@dataclasses.dataclass
class BenchConfig:
    port: int = 19592  # the first broker's; N brokers take ports port .. port + 2N - 1 (listeners, then controllers)
    brokers: int = 1  # 1: one KRaft node (broker + controller); more: a LocalCluster
    state_dir: Path = Path("/tmp/hs-bench")
    events: int = 60_000  # throughput scenario
    endpoints: int = 100  # fan-out 1 tenants (one endpoint each) for throughput and latency
    rate: int = 1_000  # offered deliveries/s in the latency and isolation scenarios
    duration: float = 30.0  # seconds of offered load in the latency scenario
    warmup: float = 5.0  # seconds of offered load before the latency and isolation figures count
    # events pushed through the whole pipeline before any scenario, not measured: a fresh broker's
    # JVM spends its first minute compiling (C2 took ~half the broker's CPU in a cold throughput run,
    # and the broker settles at ~0.07 CPU-s per 1,000 deliveries only after ~100k events)
    warmup_events: int = 100_000
    fanout_events: int = 1_000
    fanout_width: int = 50
    iso_healthy: int = 10
    iso_duration: float = 20.0
    stream_workers: int = 1
    # one per core, like the baseline's Celery pool: a delivery worker's Python runs under one
    # GIL and tops out near one core (main loop + attempt-log thread + the HTTP client's callbacks)
    delivery_workers: int = dataclasses.field(default_factory=usable_cores)
    request_timeout: float = 5.0
    baseline: bool = True
    baseline_events: int = 20_000
    baseline_duration: float = 30.0
    drain_timeout: float = 120.0  # seconds to wait for the last deliveries of a scenario
    profile_dir: Path | None = None  # py-spy the workers during the throughput scenario
    scenarios: tuple[str, ...] = ("throughput", "latency", "fanout", "isolation")

    @classmethod
    def quick(cls, **kw: Any) -> "BenchConfig":
        base = dict(events=3_000, duration=3.0, warmup=1.0, warmup_events=1_000, fanout_events=20, iso_duration=3.0, request_timeout=2.0,
                    baseline_events=1_000, baseline_duration=3.0, drain_timeout=60.0)
        return cls(**{**base, **kw})


# ---------------------------------------------------------------------- processes
def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the bench process dies, however it dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Proc:
    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path, **kw: Any) -> None:
        self.name = name
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log = log_dir / f"{name}.log"
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(cmd, env=env, stdout=kw.pop("stdout", out), stderr=out, stdin=kw.pop("stdin", subprocess.DEVNULL),
                                          preexec_fn=_die_with_parent, **kw)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def cpu(self) -> float:
        return tree_cpu_seconds(self.pid)

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ValueError):
            pass
    return out


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its live descendants (Celery's prefork children)."""
    return cpu_seconds(pid) + sum(tree_cpu_seconds(c) for c in _children(pid))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float, proc: Proc) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            tail = " | ".join(proc.log.read_text(errors="replace").strip().splitlines()[-3:])[-500:]
            raise HookstreamError(f"{proc.name} exited while starting ({tail}); see {proc.log}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise HookstreamError(f"{proc.name} did not listen on port {port} within {timeout:.0f}s; see {proc.log}")


# ---------------------------------------------------------------------- the receiver
class ReceiverClient:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.proc = Proc("receiver", [sys.executable, str(RECEIVER), "--stdin-lifetime"], env, log_dir,
                         stdout=subprocess.PIPE, stdin=subprocess.PIPE)
        line = self.proc.popen.stdout.readline()
        if not line.strip().isdigit():
            raise HookstreamError(f"the receiver did not start; see {self.proc.log}")
        self.port = int(line)
        self.base = f"http://127.0.0.1:{self.port}"

    def _call(self, method: str, path: str, body: bytes | None = None) -> Any:
        request = urllib.request.Request(self.base + path, data=body, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return orjson.loads(response.read())

    def stats(self) -> dict:
        return self._call("GET", "/_bench/stats")

    def samples(self) -> tuple[list[str], list[list[float]]]:
        doc = self._call("GET", "/_bench/samples")
        return doc["paths"], doc["samples"]

    def reset(self) -> None:
        self._call("POST", "/_bench/reset", b"")

    def add_secrets(self, secrets: dict[str, str]) -> None:
        self._call("PUT", "/_bench/secrets", orjson.dumps(secrets))

    def url(self, path: str) -> str:
        return self.base + path

    def stop(self) -> None:
        try:
            self.proc.popen.stdin.close()
        except OSError:
            pass
        self.proc.stop()


# ---------------------------------------------------------------------- figures
def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def latency_ms(latencies_s: list[float]) -> dict[str, float | int]:
    ordered = sorted(latencies_s)
    pick = lambda q: round(percentile(ordered, q) * 1000, 1)  # noqa: E731
    return {"p50": pick(50), "p95": pick(95), "p99": pick(99), "max": pick(100), "count": len(ordered)}


def _machine() -> dict[str, Any]:
    return {"nproc": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version(), "loadavg_start": list(os.getloadavg())}


# ---------------------------------------------------------------------- publishing
def _event_data(n: int) -> dict[str, Any]:
    from hookstream.schemas import entity_field, example

    data = example(EVENT_TYPE)
    data[entity_field(EVENT_TYPE)] = f"pay_bench_{n}"
    return data


class Publishing:
    """Publishes events to given tenants, round-robin: fast, or paced at a rate."""

    def __init__(self, send: Callable[[Any], None], poll: Callable[[], None]) -> None:
        self.send, self.poll = send, poll
        self.data = [_event_data(n) for n in range(1000)]

    def _event(self, n: int, tenant: str):
        from hookstream.schemas import Event

        return Event.new(EVENT_TYPE, tenant, self.data[n % 1000])

    def burst(self, count: int, tenants: list[str]) -> None:
        send, new, data = self.send, self._event, tenants
        for n in range(count):
            send(new(n, data[n % len(data)]))
        self.poll()

    def paced(self, count: int, tenants: list[str], rate: float, progress: Progress | None = None, label: str = "") -> float:
        """Send ``count`` events at ``rate`` per second; returns the rate achieved."""
        start = time.monotonic()
        n = 0
        while n < count:
            due = min(count, int((time.monotonic() - start) * rate) + 1)
            while n < due:
                self.send(self._event(n, tenants[n % len(tenants)]))
                n += 1
            self.poll()
            if progress and n % 200 == 0:
                progress(label, n, count)
            time.sleep(0.001)
        return count / max(time.monotonic() - start, 1e-9)


def _wait_for(receiver: ReceiverClient, want: int, timeout: float, progress: Progress | None, label: str,
              paths: Callable[[dict], int] | None = None) -> int:
    """Poll the receiver until ``want`` requests arrived (or ``timeout``); returns how many did."""
    deadline = time.monotonic() + timeout
    last = -1
    while True:
        stats = receiver.stats()
        got = paths(stats) if paths else stats["requests"]
        if progress and got != last:
            progress(label, min(got, want), want)
            last = got
        if got >= want or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


# ---------------------------------------------------------------------- the hookstream side
class HookstreamStack:
    def __init__(self, cfg: BenchConfig, progress: Progress | None) -> None:
        from hookstream.core.settings import Settings

        self.cfg = cfg
        self.progress = progress
        self.logs = cfg.state_dir / "logs"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKSTREAM_")}
        env.update(
            HOOKSTREAM_KAFKA_BOOTSTRAP=",".join(f"127.0.0.1:{cfg.port + i}" for i in range(cfg.brokers)),
            HOOKSTREAM_STATE_DIR=str(cfg.state_dir),
            HOOKSTREAM_DATABASE_URL=f"sqlite:///{cfg.state_dir / 'hookstream.db'}",
            HOOKSTREAM_TOPIC_PREFIX="bench.",
            HOOKSTREAM_ALLOW_HTTP="1",
            HOOKSTREAM_ALLOWED_NETWORKS="127.0.0.0/8",
            HOOKSTREAM_REQUEST_TIMEOUT=f"{cfg.request_timeout}s",
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
        )
        self.env = env
        self.settings = Settings.from_env(env)
        self.workers: list[Proc] = []
        self.broker_pids: dict[str, int] = {}  # "kafka", or "kafka-<node id>" per node of a cluster
        self.replication: dict[str, int] = {"replication_factor": 1, "min_insync_replicas": 1}
        self.tenants: dict[str, list[str]] = {}  # scenario -> tenants
        self.endpoint_secrets: dict[str, str] = {}  # receiver path -> whsec (for the baseline too)
        self.subs: dict[str, list[tuple[str, str, str]]] = {}  # tenant -> (sub id, url, secret)

    # -- set-up
    def _broker(self):
        if self.cfg.brokers == 1:
            from hookstream.shell.broker import LocalBroker

            return LocalBroker(self.settings)
        from hookstream.shell.broker import LocalCluster

        return LocalCluster(self.settings, brokers=self.cfg.brokers)

    def start_broker(self) -> None:
        from hookstream.core.topics import ensure_topics

        broker = self._broker()
        broker.stop()
        shutil.rmtree(self.cfg.state_dir, ignore_errors=True)  # FRESH: no topics or offsets from before
        self.cfg.state_dir.mkdir(parents=True)
        status = broker.start(owner_pid=os.getpid())
        if self.cfg.brokers == 1:
            self.broker_pids = {"kafka": status.pid} if status.pid else {}
        else:
            self.broker_pids = {f"kafka-{node.node_id}": node.pid for node in status.brokers if node.pid}
        ensure_topics(self.settings)  # replicated min(3, live brokers) times, min.insync.replicas one less
        if self.cfg.brokers > 1:
            self.replication = _check_replication(self.settings, min(3, self.cfg.brokers))

    def stop_broker(self) -> None:
        self._broker().stop()

    def subscribe(self, receiver: ReceiverClient) -> None:
        from hookstream.subscriptions.store import SubscriptionStore
        from hookstream.subscriptions.topic import publish_pending

        store = SubscriptionStore.open(self.settings)
        cfg = self.cfg

        def add(tenant: str, path: str) -> None:
            sub, secret = store.add(tenant, receiver.url(path), ["*"])
            self.endpoint_secrets[path] = secret
            self.subs.setdefault(tenant, []).append((sub.id, receiver.url(path), secret))

        self.tenants["single"] = [f"bench-t{i:03d}" for i in range(cfg.endpoints)]
        for i, tenant in enumerate(self.tenants["single"]):
            add(tenant, f"/e/t{i:03d}")
        self.tenants["fanout"] = ["bench-fan"]
        for i in range(cfg.fanout_width):
            add("bench-fan", f"/e/fan{i:02d}")
        self.tenants["iso_alone"], self.tenants["iso_hung"] = ["bench-iso-a"], ["bench-iso-b"]
        for i in range(cfg.iso_healthy):
            add("bench-iso-a", f"/e/isoa{i:02d}")
            add("bench-iso-b", f"/e/isob{i:02d}")
        sub, _ = store.add("bench-iso-b", receiver.url("/hang/isob"), ["*"])
        self.subs["bench-iso-b"].append((sub.id, receiver.url("/hang/isob"), ""))
        receiver.add_secrets(self.endpoint_secrets)
        publish_pending(self.settings)

    def start_workers(self) -> None:
        py = sys.executable
        for i in range(self.cfg.stream_workers):
            self.workers.append(Proc(f"streams-{i + 1}", [py, "-m", "hookstream", "streams", "worker"], self.env, self.logs))
        for i in range(self.cfg.delivery_workers):
            cmd = [py, "-m", "hookstream", "delivery", "worker", "--metrics-port", str(_free_port()), "--loglevel", "warning"]
            self.workers.append(Proc(f"delivery-{i + 1}", cmd, self.env, self.logs))

    def stop_workers(self) -> None:
        for w in reversed(self.workers):
            w.stop(timeout=self.cfg.request_timeout + 15)
        self.workers = []

    def check_workers(self) -> None:
        for w in self.workers:
            if not w.alive():
                raise HookstreamError(f"the {w.name} worker exited (code {w.popen.returncode}); see {w.log}")

    def processes(self) -> dict[str, int]:
        procs = dict(self.broker_pids)
        procs.update({w.name: w.pid for w in self.workers})
        return procs


def _check_replication(settings, want: int) -> dict[str, int]:
    """The replication the pipeline's topics got: every partition on ``want`` brokers, or an error."""
    from confluent_kafka.admin import ConfigResource

    from hookstream.core.kafka import make_admin
    from hookstream.core.topics import DELIVERIES, topic_specs

    admin = make_admin(settings)
    topics = admin.list_topics(timeout=30).topics
    short = sorted(settings.topic(s.name) for s in topic_specs(settings)
                   if any(len(p.replicas) < want for p in topics[settings.topic(s.name)].partitions.values()))
    if short:
        raise HookstreamError(f"topics with fewer than {want} replicas on the {want}-broker bench cluster: {', '.join(short)}")
    resource = ConfigResource(ConfigResource.Type.TOPIC, settings.topic(DELIVERIES))
    config = admin.describe_configs([resource], request_timeout=30)[resource].result()
    return {"replication_factor": want, "min_insync_replicas": int(config["min.insync.replicas"].value)}


_TREES = ("celery",)  # processes whose children work for them (the prefork pool)


def _cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    # only the pool counts its children: everything else here is a child of the bench process
    return {name: (tree_cpu_seconds if name in _TREES else cpu_seconds)(pid) for name, pid in pids.items()}


def _cpu_per_1000(before: dict[str, float], after: dict[str, float], deliveries: int) -> dict[str, float]:
    out = {name: round((after[name] - before[name]) / max(deliveries, 1) * 1000, 3) for name in before}
    out["total"] = round(sum(out.values()), 3)
    return out


class _Profiler:
    """py-spy on the workers during one scenario: raw (collapsed) stacks, one file per worker."""

    def __init__(self, out_dir: Path | None, pids: dict[str, int]) -> None:
        self.procs: list[subprocess.Popen] = []
        self.files: dict[str, str] = {}
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if out_dir is None or not Path(spy).exists():
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, pid in pids.items():
            if name.startswith("kafka"):
                continue
            path = out_dir / f"{name}.txt"
            self.files[name] = str(path)
            self.procs.append(subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw",
                                                "--output", str(path), "--nonblocking", "--threads"],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent))

    def stop(self) -> dict[str, str]:
        for p in self.procs:
            p.send_signal(signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        return self.files


# ---------------------------------------------------------------------- scenarios
def _scenario_samples(receiver: ReceiverClient, prefix: str | tuple[str, ...]) -> list[tuple[str, float, float, str | None]]:
    paths, samples = receiver.samples()
    return [(paths[int(i)], pub, ack, msg_id) for i, pub, ack, msg_id in samples if paths[int(i)].startswith(prefix)]


def _windows(samples: list[tuple[str, float, float, str | None]], width: float) -> list[list[float]]:
    """[seconds into the run, deliveries, p50 ms, p99 ms] per ``width`` seconds of publish time
    (warm-up included): shows whether latency was steady or one stall made the tail."""
    if not samples:
        return []
    start = min(p for _, p, _, _id in samples)
    buckets: dict[int, list[float]] = {}
    for _, p, ack, _id in samples:
        buckets.setdefault(int((p - start) // width), []).append(ack - p)
    return [[k * width, len(v), round(percentile(v, 50) * 1000, 1), round(percentile(v, 99) * 1000, 1)]
            for k, v in sorted(buckets.items())]


def _keep_samples(cfg: BenchConfig, label: str, samples: list[tuple[str, float, float, str | None]]) -> None:
    """Raw (path, published, acked) samples under the state dir, for a closer look later."""
    out = cfg.state_dir / "samples"
    out.mkdir(parents=True, exist_ok=True)
    (out / (label.replace(" ", "-").replace("(", "").replace(")", "") + ".json")).write_bytes(orjson.dumps(samples))


def throughput(pub: Publishing, receiver: ReceiverClient, tenants: list[str], count: int, cfg: BenchConfig,
               progress: Progress | None, pids: dict[str, int], label: str = "throughput") -> dict[str, Any]:
    receiver.reset()
    before = _cpu_snapshot(pids)
    profiler = _Profiler(cfg.profile_dir, pids) if label == "throughput" else None
    t0 = time.time()
    pub.burst(count, tenants)
    published = time.time()
    got = _wait_for(receiver, count, cfg.drain_timeout + count / 1000, progress, label)
    after = _cpu_snapshot(pids)
    profiles = profiler.stop() if profiler else {}
    samples = _scenario_samples(receiver, "/e/")
    _keep_samples(cfg, label, samples)
    last_ack = max((ack for _, _, ack, _id in samples), default=time.time())
    stats = receiver.stats()
    out = {
        "events": count,
        "deliveries": got,
        "complete": got >= count,
        "publish_s": round(published - t0, 3),
        "elapsed_s": round(last_ack - t0, 3),
        "deliveries_per_s": round(got / max(last_ack - t0, 1e-9)),
        "latency_ms": latency_ms([ack - p for _, p, ack, _id in samples]),
        "cpu_s_per_1000_deliveries": _cpu_per_1000(before, after, got),
        "duplicates": stats["duplicates"],
        "signatures": stats["signatures"],
    }
    if profiles:
        out["profiles"] = profiles
    return out


def latency(pub: Publishing, receiver: ReceiverClient, tenants: list[str], rate: float, duration: float,
            cfg: BenchConfig, progress: Progress | None, label: str = "latency", prefix: str | tuple[str, ...] = "/e/",
            per_event: int = 1, expect_paths: Callable[[dict], int] | None = None, settings=None) -> dict[str, Any]:
    """Offer ``rate`` deliveries/s (``rate / per_event`` events/s) for ``cfg.warmup`` and then
    ``duration`` seconds; only deliveries of events published after the warm-up are measured."""
    receiver.reset()
    event_rate = rate / per_event
    warm_events = int(event_rate * cfg.warmup)
    events = max(1, int(event_rate * duration))
    measured_from = time.time() + cfg.warmup
    achieved = pub.paced(warm_events + events, tenants, event_rate, progress, label + " (publishing)")
    want = (warm_events + events) * per_event
    got = _wait_for(receiver, want, cfg.drain_timeout, progress, label, expect_paths)
    every = _scenario_samples(receiver, prefix)
    samples = [s for s in every if s[1] >= measured_from]
    stats = receiver.stats()
    _keep_samples(cfg, label, every)
    split = stages(settings, samples) if settings is not None else None
    return {
        "stages": split,
        "offered_per_s": rate,
        "achieved_offered_per_s": round(achieved * per_event),
        "warmup_s": cfg.warmup,
        "duration_s": duration,
        "deliveries": got,
        "expected": want,
        "complete": got >= want,
        "latency_ms": latency_ms([ack - p for _, p, ack, _id in samples]),
        "warmup_latency_ms": latency_ms([ack - p for _, p, ack, _id in every if p < measured_from]),
        "windows_ms": _windows(every, 5.0),
        "duplicates": stats["duplicates"],
        "signatures": stats["signatures"],
        "hung_requests": stats["hung"],
    }


def delivery_record_times(settings, since: float, ids: set[str], timeout: float = 60.0) -> dict[str, float]:
    """Delivery id -> the time the stream worker produced its record (the Kafka record's
    CreateTime, which librdkafka stamps at ``produce()``), for records written after ``since``.
    Best effort: what was found within ``timeout`` seconds (the split is a diagnostic)."""
    from hookstream.core.errors import BrokerError
    from hookstream.core.reading import Time, read_range
    from hookstream.core.topics import DELIVERIES

    found: dict[str, float] = {}
    try:
        for msg in read_range(settings, settings.topic(DELIVERIES), start=Time(since), deadline=timeout,
                              client_id="hookstream-bench"):
            delivery = orjson.loads(msg.value()).get("delivery_id")
            if delivery in ids:
                found[delivery] = msg.timestamp()[1] / 1000
    except BrokerError:
        pass
    return found


def stages(settings, samples: list[tuple[str, float, float, str | None]]) -> dict[str, Any]:
    """Latency split at the delivery record: publish -> record written by the stream worker, and
    record written -> acknowledged POST (Kafka hop, delivery worker, HTTP). Millisecond clock."""
    if not samples:
        return {}
    times = delivery_record_times(settings, min(p for _, p, _, _ in samples) - 1.0, {i for *_, i in samples if i})
    first, second = [], []
    for _, p, ack, msg_id in samples:
        at = times.get(msg_id)
        if at is not None:
            first.append(at - p)
            second.append(ack - at)
    return {"matched": len(first), "publish_to_record_ms": latency_ms(first), "record_to_ack_ms": latency_ms(second)}


def fanout(pub: Publishing, receiver: ReceiverClient, tenants: list[str], cfg: BenchConfig, progress: Progress | None) -> dict[str, Any]:
    receiver.reset()
    want = cfg.fanout_events * cfg.fanout_width
    t0 = time.time()
    pub.burst(cfg.fanout_events, tenants)
    got = _wait_for(receiver, want, cfg.drain_timeout + want / 2000, progress, "fanout")
    samples = _scenario_samples(receiver, "/e/fan")
    last_ack = max((ack for _, _, ack, _id in samples), default=time.time())
    by_event: dict[float, float] = {}
    for _, p, ack, _id in samples:  # the 50 copies of one event share its publish time
        by_event[p] = max(by_event.get(p, 0.0), ack)
    stats = receiver.stats()
    return {
        "events": cfg.fanout_events,
        "endpoints": cfg.fanout_width,
        "deliveries": got,
        "complete": got >= want,
        "deliveries_per_s": round(got / max(last_ack - t0, 1e-9)),
        "latency_ms": latency_ms([ack - p for _, p, ack, _id in samples]),
        "all_endpoints_latency_ms": latency_ms([ack - p for p, ack in by_event.items()]),
        "duplicates": stats["duplicates"],
        "signatures": stats["signatures"],
    }


def isolation(pub: Publishing, receiver: ReceiverClient, stack: HookstreamStack, cfg: BenchConfig, progress: Progress | None) -> dict[str, Any]:
    healthy = lambda s: sum(n for path, n in s["per_path"].items() if path.startswith("/e/iso"))  # noqa: E731
    alone = latency(pub, receiver, stack.tenants["iso_alone"], cfg.rate, cfg.iso_duration, cfg, progress,
                    "isolation (alone)", "/e/isoa", per_event=cfg.iso_healthy, expect_paths=healthy)
    hung = latency(pub, receiver, stack.tenants["iso_hung"], cfg.rate, cfg.iso_duration, cfg, progress,
                   "isolation (hung)", "/e/isob", per_event=cfg.iso_healthy, expect_paths=healthy)
    p99a, p99b = alone["latency_ms"]["p99"], hung["latency_ms"]["p99"]
    return {
        "healthy_endpoints": cfg.iso_healthy,
        "offered_healthy_per_s": cfg.rate,
        "request_timeout_s": cfg.request_timeout,
        "without_hung": alone,
        "with_hung": hung,
        "healthy_p99_ratio": round(p99b / p99a, 2) if p99a else None,
    }


def _warm_up(pub: Publishing, receiver: ReceiverClient, tenants: list[str], stack_check: Callable[[], None], timeout: float = 180.0) -> float:
    """Until a first event comes through (workers joined their groups), then a small burst."""
    receiver.reset()  # earlier scenarios' requests must not count as this stack being ready
    start = time.monotonic()
    deadline = start + timeout
    while receiver.stats()["requests"] == 0:
        stack_check()
        if time.monotonic() > deadline:
            raise HookstreamError(f"no delivery reached the receiver within {timeout:.0f}s of starting the workers")
        pub.burst(1, tenants)
        time.sleep(0.5)
    ready = time.monotonic() - start
    pub.burst(len(tenants) * 2, tenants)
    time.sleep(2.0)
    return ready


def run_hookstream(cfg: BenchConfig, receiver: ReceiverClient, stack: HookstreamStack, progress: Progress | None) -> dict[str, Any]:
    from hookstream.producers import Publisher

    results: dict[str, Any] = {}
    with Publisher(stack.settings) as publisher:
        pub = Publishing(publisher.send, lambda: publisher.poll(0))
        results["ready_s"] = round(_warm_up(pub, receiver, stack.tenants["single"], stack.check_workers), 1)
        pids = {**stack.processes(), "receiver": receiver.proc.pid, "bench": os.getpid()}
        if cfg.warmup_events:
            warm = throughput(pub, receiver, stack.tenants["single"], cfg.warmup_events, cfg, progress, pids, label="warm-up")
            results["warmup"] = {k: warm[k] for k in ("events", "deliveries_per_s", "cpu_s_per_1000_deliveries")}
            stack.check_workers()
        if "throughput" in cfg.scenarios:
            results["throughput"] = throughput(pub, receiver, stack.tenants["single"], cfg.events, cfg, progress, pids)
            stack.check_workers()
        if "latency" in cfg.scenarios:
            results["latency"] = latency(pub, receiver, stack.tenants["single"], cfg.rate, cfg.duration, cfg, progress,
                                         settings=stack.settings)
            stack.check_workers()
        if "fanout" in cfg.scenarios:
            results["fanout"] = fanout(pub, receiver, stack.tenants["fanout"], cfg, progress)
            stack.check_workers()
        if "isolation" in cfg.scenarios:
            results["isolation"] = isolation(pub, receiver, stack, cfg, progress)
            stack.check_workers()
        publisher.flush(30)
    return results


# ---------------------------------------------------------------------- the Celery baseline
def baseline_available() -> str | None:
    """None when the baseline can run, else why not."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (Debian package redis-server; `make bench` installs it)"
    try:
        import celery  # noqa: F401
        import redis  # noqa: F401
    except ImportError:
        return "celery/redis are not installed (pip install -e '.[bench]'; `make bench` does)"
    return None


def run_baseline(cfg: BenchConfig, receiver: ReceiverClient, stack: HookstreamStack, progress: Progress | None) -> dict[str, Any]:
    from hookstream.schemas import encode_event

    logs = cfg.state_dir / "logs"
    redis_port = _free_port()
    redis_dir = cfg.state_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    redis = Proc("redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--dir", str(redis_dir), "--protected-mode", "yes"], dict(os.environ), logs)
    workers: list[Proc] = []
    try:
        _wait_port(redis_port, 30, redis)
        os.environ["CELERY_REDIS_BROKER"] = f"redis://127.0.0.1:{redis_port}/0"
        env = dict(os.environ, CELERY_REDIS_TIMEOUT=str(cfg.request_timeout),
                   PYTHONPATH=os.pathsep.join([str(REPO), str(BASELINES)]))
        concurrency = os.cpu_count() or 1
        workers.append(Proc("celery", [sys.executable, "-m", "celery", "-A", "celery_redis.tasks", "worker", "--pool", "prefork",
                                       "--concurrency", str(concurrency), "--loglevel", "warning", "--without-gossip",
                                       "--without-mingle", "--without-heartbeat"], env, logs))
        if str(BASELINES) not in sys.path:
            sys.path.insert(0, str(BASELINES))
        from celery_redis import tasks

        tasks.app.conf.broker_url = os.environ["CELERY_REDIS_BROKER"]
        subs = stack.subs

        def send(event) -> None:
            encode_event(event)  # validated like hookstream's publisher does
            tasks.enqueue(event.to_dict(), subs[event.tenant_id])

        pub = Publishing(send, lambda: None)

        def check() -> None:
            for w in workers:
                if not w.alive():
                    raise HookstreamError(f"the celery worker exited; see {w.log}")

        ready = _warm_up(pub, receiver, stack.tenants["single"], check)
        pids = {"redis": redis.pid, "celery": workers[0].pid, "receiver": receiver.proc.pid, "bench": os.getpid()}
        tp = throughput(pub, receiver, stack.tenants["single"], cfg.baseline_events, cfg, progress, pids, "baseline throughput")
        lat = latency(pub, receiver, stack.tenants["single"], cfg.rate, cfg.baseline_duration, cfg, progress, "baseline latency")
        return {
            "name": f"celery-redis (Celery {_version('celery')} + Redis {_redis_version()}, prefork pool, concurrency {concurrency})",
            "ready_s": round(ready, 1),
            "deliveries_per_s": tp["deliveries_per_s"],
            "latency_ms": lat["latency_ms"],
            "throughput": tp,
            "latency": lat,
        }
    finally:
        for w in workers:
            w.stop()
        redis.stop()


def _version(dist: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _redis_version() -> str:
    try:
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
        return out.split("v=", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


# ---------------------------------------------------------------------- the whole run
def run(cfg: BenchConfig, progress: Progress | None = None) -> dict[str, Any]:
    if not RECEIVER.exists():
        raise HookstreamError(f"{RECEIVER} is missing: `hookstream bench` runs from a source checkout of hookstream")
    why_not = baseline_available() if cfg.baseline else "skipped (--no-baseline)"
    started = dt.datetime.now(dt.timezone.utc)
    report: dict[str, Any] = {"date": started.isoformat(timespec="seconds"), "machine": _machine()}
    stack = HookstreamStack(cfg, progress)
    receiver = None
    try:
        if progress:
            progress("starting broker", 0, 1)
        stack.start_broker()
        receiver = ReceiverClient(stack.env, stack.logs)
        stack.subscribe(receiver)
        stack.start_workers()
        results = run_hookstream(cfg, receiver, stack, progress)
        results["topics"] = stack.replication
        stack.stop_workers()
        stack.stop_broker()  # the baseline gets the machine to itself, as hookstream had
        baseline = None
        if why_not is None:
            baseline = run_baseline(cfg, receiver, stack, progress)
    finally:
        stack.stop_workers()
        if receiver is not None:
            receiver.stop()
        stack.stop_broker()
    report.update(_summary(cfg, results, baseline, why_not))
    report["machine"]["loadavg_end"] = list(os.getloadavg())
    report["duration_s"] = round((dt.datetime.now(dt.timezone.utc) - started).total_seconds(), 1)
    return report


def _summary(cfg: BenchConfig, r: dict[str, Any], baseline: dict[str, Any] | None, why_not: str | None) -> dict[str, Any]:
    tp, lat = r.get("throughput", {}), r.get("latency", {})
    sig_failures = sum(s.get("signatures", {}).get("failures", 0) for s in _scenario_dicts(r, baseline))
    sig_checked = sum(s.get("signatures", {}).get("checked", 0) for s in _scenario_dicts(r, baseline))
    out = {
        "deliveries_per_s": tp.get("deliveries_per_s"),
        "rate": cfg.rate,
        "latency_ms": lat.get("latency_ms"),
        "fanout": r.get("fanout"),
        "isolation": r.get("isolation"),
        "baseline": baseline if baseline is not None else {"name": None, "skipped": why_not, "deliveries_per_s": None, "latency_ms": None},
        "ratio_vs_baseline": round(tp["deliveries_per_s"] / baseline["deliveries_per_s"], 1) if baseline and tp and baseline["deliveries_per_s"] else None,
        "cpu_s_per_1000_deliveries": tp.get("cpu_s_per_1000_deliveries"),
        "signatures": {"checked": sig_checked, "failures": sig_failures},
        "throughput": tp,
        "latency": lat,
        "ready_s": r.get("ready_s"),
        "warmup": r.get("warmup"),
        "topics": r.get("topics"),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()},
    }
    return out


def _scenario_dicts(r: dict[str, Any], baseline: dict[str, Any] | None) -> list[dict]:
    out = [r[k] for k in ("throughput", "latency", "fanout") if k in r]
    if "isolation" in r:
        out += [r["isolation"]["without_hung"], r["isolation"]["with_hung"]]
    if baseline:
        out += [baseline["throughput"], baseline["latency"]]
    return out


def report_rows(report: dict[str, Any]) -> tuple[str, list[tuple[str, str, str]], list[str]]:
    """The report for reading: a heading, (scenario, figure, target) rows with the issue's
    targets beside the figures, and closing notes. ``hookstream bench`` prints them as a table."""
    m = report["machine"]
    c = report.get("config") or {}
    heading = (f"hookstream bench, {report['date']}: {m['nproc']} cores ({m['cpu']}), Python {m['python']}, "
               f"load average {m['loadavg_start'][0]:.2f} -> {m['loadavg_end'][0]:.2f}")
    if c:
        heading += (f"; {c.get('brokers', 1)} broker(s), {c.get('stream_workers')} stream worker(s), "
                    f"{c.get('delivery_workers')} delivery worker(s)")
    t = report.get("topics") or {}
    if t.get("replication_factor", 1) > 1:
        heading += f"; topics replicated {t['replication_factor']}x, min.insync.replicas {t['min_insync_replicas']}"
    rows: list[tuple[str, str, str]] = []
    lines: list[str] = []  # the notes after the table

    def row(name: str, value: Any, target: str = "") -> None:
        rows.append((name, str(value), target))

    warm = report.get("warmup") or {}
    if warm:
        row("warm-up (not measured), deliveries/s", f"{warm['deliveries_per_s']:,}")
    tp = report.get("throughput") or {}
    if tp:
        row("throughput, deliveries/s", f"{tp['deliveries_per_s']:,}", ">= 5,000")
        row("  (events, complete)", f"{tp['events']:,} {'yes' if tp['complete'] else 'NO'}")
    lat = report.get("latency") or {}
    if lat:
        l_ = lat["latency_ms"]
        row(f"latency at {lat['offered_per_s']:,}/s, p50/p95/p99 ms", f"{l_['p50']}/{l_['p95']}/{l_['p99']}", "p99 <= 50 ms")
        split = lat.get("stages") or {}
        if split:
            a, b = split["publish_to_record_ms"], split["record_to_ack_ms"]
            row("  publish -> delivery record p50/p99", f"{a['p50']}/{a['p99']}")
            row("  delivery record -> ack p50/p99", f"{b['p50']}/{b['p99']}")
    fo = report.get("fanout") or {}
    if fo:
        row(f"fan-out x{fo['endpoints']}, deliveries/s", f"{fo['deliveries_per_s']:,}")
        row("  all endpoints reached, p99 ms", fo["all_endpoints_latency_ms"]["p99"])
    iso = report.get("isolation") or {}
    if iso:
        row("isolation: healthy p99 alone ms", iso["without_hung"]["latency_ms"]["p99"])
        row("isolation: healthy p99 w/ hung ms", iso["with_hung"]["latency_ms"]["p99"])
        row("isolation: ratio", iso["healthy_p99_ratio"], "<= 2")
    b = report["baseline"]
    if b.get("name"):
        row("baseline deliveries/s", f"{b['deliveries_per_s']:,}")
        bl = b["latency_ms"]
        row(f"baseline latency p50/p95/p99 ms", f"{bl['p50']}/{bl['p95']}/{bl['p99']}")
        row("hookstream / baseline", report["ratio_vs_baseline"], ">= 10")
    else:
        row("baseline", "skipped", b.get("skipped") or "")
    sig = report["signatures"]
    row("signatures checked / failed", f"{sig['checked']} / {sig['failures']}", "0 failed")
    cpu = report.get("cpu_s_per_1000_deliveries") or {}
    if cpu:
        lines.append("CPU seconds per 1,000 deliveries (throughput scenario): " + ", ".join(f"{k} {v}" for k, v in cpu.items()))
    if b.get("name"):
        bcpu = b["throughput"]["cpu_s_per_1000_deliveries"]
        lines.append("baseline CPU seconds per 1,000 deliveries: " + ", ".join(f"{k} {v}" for k, v in bcpu.items()))
        lines.append(f"baseline: {b['name']}")
    return heading, rows, lines
