"""``hookstream chaos``: the fault suite. Real processes, a known load, one fault after another,
then a check that nothing was lost.

Each scenario runs the whole pipeline as separate processes, on its own topic prefix, state dir
and ports: the broker (one ``LocalBroker``, or the three-node ``LocalCluster``), the stream
worker, two delivery workers, the outbox relay, and one local receiver process per endpoint
(``hookstream.shell.receiver``'s app, which verifies every Standard Webhooks signature). Five
endpoints over three tenants:

    acme-ok      acme     always 204
    acme-flaky   acme     500 for a random 20% of requests
    globex-ok    globex   always 204
    globex-dead  globex   always 500: every delivery runs out of the (short) retry schedule
    initech-ok   initech  always 204 (the one that disappears in ``receiver-outage``)

This process publishes events at a steady rate, round-robin over the tenants, half through the
producers' ``Publisher`` and half through the transactional outbox (``add_to_outbox``, relayed by
``hookstream outbox relay``). Every event carries a unique entity id, which the receiver reports
with each request, so every request is tied to its (endpoint, event) pair. The faults are
injected while the load runs; the load goes on a little after the last one; then the run waits
(bounded) until every pair is accounted for, and checks:

- every (endpoint, event) pair was delivered (a 204 from its receiver, so a valid signature) or
  is on the dead-letter topic; nothing is missing;
- nothing else: no request or dead letter for a pair that was never published, no request whose
  ``webhook-id`` is not its pair's (a duplicate is allowed only with the same ``webhook-id``), no
  request refused for its signature;
- the always-failing endpoint has all its pairs dead-lettered, and an endpoint that never refused
  a request (other than one whose receiver was taken away) has none.

Figures, per fault: *flowing again* (from the fault to the first successful delivery of an event
published after it, at the endpoints the fault concerns) and *caught up* (from the fault to the
last first-delivery, at the always-204 endpoints, of the events published before it); per
scenario: events, pairs, delivered, dead-lettered, duplicates (requests beyond the first 204 of a
pair), the worst publish -> first delivery at an always-204 endpoint, and the total time.

The breaker (``HOOKSTREAM_BREAKER_WINDOW``) is set to an hour so it never opens within a run: an
open breaker holds an endpoint's records for its pause (30 s), which would only lengthen the
settling without testing anything these scenarios are about.

The receiver process is ``python -m hookstream.shell.chaos receive ...`` (``_receiver_main``).
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from hookstream.core.errors import HookstreamError

SCENARIOS = ("broker-restart", "worker-kill", "rolling-restart", "receiver-outage", "cluster-leaders")
CLUSTER_SCENARIOS = ("cluster-leaders",)
TENANTS = ("acme", "globex", "initech")
TYPES = ("payment.received", "invoice.created", "customer.updated", "sales_order.confirmed")


@dataclasses.dataclass(frozen=True)
class EndpointSpec:
    name: str
    tenant: str
    fail_rate: float

    @property
    def always_ok(self) -> bool:
        return self.fail_rate == 0.0


ENDPOINTS = (
    EndpointSpec("acme-ok", "acme", 0.0),
    EndpointSpec("acme-flaky", "acme", 0.2),
    EndpointSpec("globex-ok", "globex", 0.0),
    EndpointSpec("globex-dead", "globex", 1.0),
    EndpointSpec("initech-ok", "initech", 0.0),
)
OUTAGE_ENDPOINT = "initech-ok"
# A failing endpoint answers 500, not 503: a 503 (like 429, 502, 504, a timeout) asks the sender to
# slow down, and the delivery worker then waits at least the 60 s throttle floor before the retry
# (delivery/schedule.py), which would make every run wait a minute for its last retries.
FAIL_STATUS = 500
WARMUP_RATE = 6.0  # events per second until deliveries flow


@dataclasses.dataclass(frozen=True)
class Size:
    rate: float  # events per second, over all tenants
    lead: float  # seconds of load before the first fault
    gap: float  # seconds of load between one fault's recovery and the next fault
    tail: float  # seconds of load after the last fault
    outage: float  # seconds a receiver is away in receiver-outage
    retry_schedule: str
    settle_timeout: float  # seconds to wait, after the load, for every pair to be accounted for
    flowing_timeout: float  # seconds to wait for deliveries to flow again after a fault


SIZES = {
    # `make test` runs this one: the load is light (the restarts, not the events, take the time)
    "short": Size(rate=50, lead=3, gap=1, tail=2, outage=10, retry_schedule="1s,2s,4s", settle_timeout=150, flowing_timeout=90),
    "long": Size(rate=200, lead=20, gap=15, tail=15, outage=60, retry_schedule="1s,5s,15s,30s", settle_timeout=600, flowing_timeout=180),
}


# ---------------------------------------------------------------------- figures
@dataclasses.dataclass
class Fault:
    label: str
    at: float  # unix time of the fault
    endpoints: tuple[str, ...]  # where "flowing again" is looked for
    via: str | None = None  # only events published this way count for "flowing again" (outbox/publisher)
    restored_at: float | None = None
    flowing_s: float | None = None
    caught_up_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"fault": self.label, "flowing_again_s": self.flowing_s, "caught_up_s": self.caught_up_s,
                "restored_after_s": None if self.restored_at is None else round(self.restored_at - self.at, 2)}


@dataclasses.dataclass
class ScenarioResult:
    scenario: str
    size: str
    brokers: int
    events: int = 0
    pairs: int = 0
    missing: int = 0  # pairs neither delivered nor dead-lettered
    stuck_retries: int = 0  # of those, pairs whose last attempt failed and whose retry never came
    delivered: int = 0
    dead_lettered: int = 0
    duplicates: int = 0
    requests: int = 0
    worst_latency_s: float | None = None
    settle_s: float | None = None
    total_s: float = 0.0
    faults: list[Fault] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    timeline: list[str] = dataclasses.field(default_factory=list)  # what happened when, seconds into the run
    logs: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in dataclasses.asdict(self).items() if k != "faults"}
        out["faults"] = [f.to_dict() for f in self.faults]
        out["ok"] = self.ok
        return out

    def line(self) -> str:
        """One line for a test log or CI output."""
        faults = "; ".join(f"{f.label}: flowing {_s(f.flowing_s)}, caught up {_s(f.caught_up_s)}" for f in self.faults)
        verdict = "ok" if self.ok else f"FAILED ({len(self.problems)} problems)"
        return (f"chaos {self.scenario} [{self.size}, {self.brokers} broker(s)]: {verdict}; {self.events} events, "
                f"{self.pairs} pairs, {self.delivered} delivered, {self.dead_lettered} dead-lettered, "
                f"{self.duplicates} duplicates, worst latency {_s(self.worst_latency_s)}, total {self.total_s:.1f}s | {faults}")


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def table_rows(results: list[ScenarioResult]) -> list[tuple[str, ...]]:
    """(scenario, fault, flowing again, caught up, events, pairs, delivered, DLQ, duplicates,
    worst latency, total, verdict): one row per fault, the scenario's figures on its first."""
    rows = []
    for r in results:
        verdict = "ok" if r.ok else "FAILED"
        for i, f in enumerate(r.faults or [Fault("(none)", 0.0, ())]):
            first = i == 0
            rows.append((r.scenario if first else "", f.label, _s(f.flowing_s), _s(f.caught_up_s),
                         *((str(r.events), str(r.pairs), str(r.delivered), str(r.dead_lettered), str(r.duplicates),
                            _s(r.worst_latency_s), f"{r.total_s:.1f}s", verdict) if first else ("",) * 8)))
    return rows


TABLE_COLUMNS = ("SCENARIO", "FAULT", "FLOWING AGAIN", "CAUGHT UP", "EVENTS", "PAIRS", "DELIVERED", "DLQ",
                 "DUPLICATES", "WORST LATENCY", "TOTAL", "RESULT")


# ---------------------------------------------------------------------- ports and processes
def free_port() -> int:
    """A port that binds now, drawn below the kernel's ephemeral range (so an outgoing connection
    cannot take it while a receiver is away and comes back on it)."""
    for _ in range(500):
        port = random.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise HookstreamError("no free port found in 20000-32000")


def free_port_pair() -> int:
    """A port p such that p and p+1 (a broker and its controller) both bind now."""
    for _ in range(500):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise HookstreamError("no free port pair found in 20000-32000")


class Receiver:
    """One endpoint's receiver process; every request it answered, read from its stdout."""

    def __init__(self, spec: EndpointSpec, env: dict[str, str], logs: Path) -> None:
        self.spec = spec
        self.env = env
        self.logs = logs
        self.port = free_port()
        self.secret = ""
        self.sub_id = ""
        self.requests: list[tuple[float, str, str, int]] = []  # (unix time, webhook-id, entity id, status)
        self.proc = None
        self.away: list[tuple[float, float | None]] = []  # (went away, came back)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{self.spec.name}"

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def spawn(self) -> None:
        from hookstream.shell.bench import Proc

        cmd = [sys.executable, "-m", "hookstream.shell.chaos", "receive", "--port", str(self.port),
               "--secret", self.secret, "--fail-rate", str(self.spec.fail_rate), "--fail-status", str(FAIL_STATUS)]
        self.proc = Proc(f"receiver-{self.spec.name}", cmd, self.env, self.logs, stdout=subprocess.PIPE)
        threading.Thread(target=self._read, args=(self.proc.popen.stdout,), daemon=True).start()

    def wait_ready(self) -> None:
        from hookstream.shell.bench import _wait_port

        _wait_port(self.port, 60, self.proc)
        if self.away and self.away[-1][1] is None:
            self.away[-1] = (self.away[-1][0], time.time())

    def _read(self, stream) -> None:
        for line in stream:
            try:
                doc = orjson.loads(line)
                self.requests.append((doc["t"], doc["id"], doc["entity"], doc["status"]))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.away.append((time.time(), None))


class Workers:
    """The pipeline's worker processes by name (streams, delivery-N, relay): start, kill, stop."""

    def __init__(self, env: dict[str, str], relay_env: dict[str, str], logs: Path) -> None:
        self.env, self.relay_env, self.logs = env, relay_env, logs
        self.procs: dict[str, Any] = {}

    def start(self, name: str) -> None:
        from hookstream.shell.bench import Proc

        if name == "streams":
            args, env = ["streams", "worker", "--metrics-port", "0"], self.env
        elif name.startswith("delivery-"):
            args, env = ["delivery", "worker", "--metrics-port", "0", "--loglevel", "warning"], self.env
        elif name == "relay":
            args, env = ["outbox", "relay", "--poll-interval", "100ms"], self.relay_env
        else:
            raise ValueError(name)
        self.procs[name] = Proc(name, [sys.executable, "-m", "hookstream", *args], env, self.logs)

    def signal(self, name: str, sig: int, timeout: float = 60.0) -> None:
        """Send ``sig`` and wait (bounded) until the process is gone."""
        proc = self.procs.pop(name)
        if proc.alive():
            proc.popen.send_signal(sig)
        try:
            proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait(10)
            raise HookstreamError(f"{name} did not stop within {timeout:.0f}s of signal {sig}; see {proc.log}")

    def check(self) -> None:
        for name, proc in self.procs.items():
            if not proc.alive():
                raise HookstreamError(f"the {name} process exited (code {proc.popen.returncode}); see {proc.log}")

    def stop_all(self) -> None:
        for name in list(reversed(self.procs)):
            proc = self.procs.pop(name)
            proc.stop(timeout=20)


# ---------------------------------------------------------------------- the load
def _entity_prefix(event_type: str) -> tuple[str, dict[str, Any]]:
    from hookstream.schemas import entity_field, example

    data = example(event_type)
    return entity_field(event_type), data


class Load(threading.Thread):
    """Publishes events at a steady rate until stopped: round-robin over the tenants and types,
    alternately through the ``Publisher`` and the outbox. Records each event once it is
    acknowledged (publisher) or committed (outbox)."""

    def __init__(self, settings, outbox_engine, rate: float, run_tag: str) -> None:
        super().__init__(daemon=True, name="chaos-load")
        self.settings, self.outbox_engine, self.rate, self.tag = settings, outbox_engine, rate, run_tag
        self.stop_event = threading.Event()
        self.flush_timeout = 300.0  # for the events still queued at the end (a broker may be restarting)
        self.published: dict[str, tuple[Any, float, str]] = {}  # entity id -> (event, unix time sent, via)
        self.failed: dict[str, Any] = {}  # entity id -> event whose publishing failed (it may or may not exist)
        self.error: BaseException | None = None
        self._templates = {t: _entity_prefix(t) for t in TYPES}

    def _event(self, n: int):
        from hookstream.schemas import Event

        event_type = TYPES[n % len(TYPES)]
        field, data = self._templates[event_type]
        entity = f"{data[field].split('_', 1)[0]}_chaos{self.tag}n{n}"
        return entity, Event.new(event_type, TENANTS[n % len(TENANTS)], {**data, field: entity})

    def run(self) -> None:
        from sqlalchemy.orm import Session

        from hookstream.producers import Publisher, add_to_outbox

        try:
            # log_level 0: the client's connection errors while a broker is down are the fault itself
            with Publisher(self.settings, delivery_timeout=300, log_level=0) as publisher:
                due, n = time.monotonic(), 0
                while not self.stop_event.is_set():
                    entity, event = self._event(n)
                    sent = time.time()
                    if n % 2:
                        with Session(self.outbox_engine) as session:
                            add_to_outbox(session, event)
                            session.commit()
                        self.published[entity] = (event, sent, "outbox")
                    else:
                        def acked(ack, entity=entity, event=event, sent=sent) -> None:
                            if ack.error is None:
                                self.published[entity] = (event, sent, "publisher")
                            else:
                                self.failed[entity] = event

                        publisher.send(event, on_delivery=acked)
                    publisher.poll(0)
                    n += 1
                    due = max(due + 1 / self.rate, time.monotonic() - 1.0)  # a stall is not made up in a burst
                    self.stop_event.wait(max(0.0, due - time.monotonic()))
                try:
                    publisher.flush(self.flush_timeout)
                except HookstreamError:
                    pass  # the failures are in self.failed
        except BaseException as exc:  # reported by the run, not lost in the thread
            self.error = exc

    def stop(self, *, abort: bool = False) -> None:
        if abort:  # the run failed: do not wait for a broker that may never come back
            self.flush_timeout = 5.0
        self.stop_event.set()
        self.join(self.flush_timeout + 30)


# ---------------------------------------------------------------------- one run
class Pipeline:
    """Everything a scenario runs on: settings, receivers, workers, the load, the faults."""

    def __init__(self, scenario: str, size: Size, state_dir: Path, bootstrap: str, brokers: int = 1) -> None:
        from hookstream.core.settings import Settings

        self.scenario, self.size, self.brokers = scenario, size, brokers
        self.prefix = ""  # "<scenario>: " before each fault's label when a run holds several
        self.say: Callable[[str], None] = lambda _msg: None
        self.dir = state_dir
        shutil.rmtree(state_dir, ignore_errors=True)
        state_dir.mkdir(parents=True)
        self.logs = state_dir / "logs"
        self.tag = uuid.uuid4().hex[:6]
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKSTREAM_")}
        env.update(
            HOOKSTREAM_KAFKA_BOOTSTRAP=bootstrap,
            HOOKSTREAM_STATE_DIR=str(state_dir / "state"),
            HOOKSTREAM_DATABASE_URL=f"sqlite:///{state_dir / 'hookstream.db'}",
            HOOKSTREAM_TOPIC_PREFIX=f"chaos{self.tag}.",
            HOOKSTREAM_ALLOW_HTTP="1",
            HOOKSTREAM_ALLOWED_NETWORKS="127.0.0.0/8",
            HOOKSTREAM_RETRY_SCHEDULE=size.retry_schedule,
            HOOKSTREAM_REQUEST_TIMEOUT="5s",
            HOOKSTREAM_BREAKER_WINDOW="1h",
            PYTHONUNBUFFERED="1",
        )
        self.env = env
        # the outbox in a database of its own: the relay polls it, the delivery workers write
        # the attempt log to the other, and SQLite takes one writer at a time
        self.relay_env = dict(env, HOOKSTREAM_DATABASE_URL=f"sqlite:///{state_dir / 'outbox.db'}")
        self.settings = Settings.from_env(env)
        self.receivers = {spec.name: Receiver(spec, env, self.logs) for spec in ENDPOINTS}
        self.workers = Workers(env, self.relay_env, self.logs)
        self.faults: list[Fault] = []
        self.load: Load | None = None
        self.outbox_engine = None

    # -- set-up
    def set_up(self, delivery_workers: int = 2) -> None:
        from hookstream.core.db import open_database
        from hookstream.core.topics import ensure_topics
        from hookstream.subscriptions.store import SubscriptionStore
        from hookstream.subscriptions.topic import publish_pending

        ensure_topics(self.settings)  # replicated min(3, brokers) times on a cluster
        store = SubscriptionStore.open(self.settings)
        for r in self.receivers.values():
            sub, secret = store.add(r.spec.tenant, r.url, ["*"])
            r.sub_id, r.secret = sub.id, secret
        publish_pending(self.settings)
        self.outbox_engine = open_database(self.settings.model_copy(update={"database_url": self.relay_env["HOOKSTREAM_DATABASE_URL"]}))
        # every process at once (each takes seconds to import on a busy machine); then the receivers' ports
        self.workers.start("streams")
        for i in range(delivery_workers):
            self.workers.start(f"delivery-{i + 1}")
        self.workers.start("relay")
        for r in self.receivers.values():
            r.spawn()
        for r in self.receivers.values():
            r.wait_ready()

    def start_load(self, ready_timeout: float = 180.0) -> None:
        """Start the load, and return once deliveries flow at every always-204 endpoint (the
        workers joined their groups)."""
        # a trickle until the workers are in their groups (a backlog built while they start would
        # be redelivered by the rebalance of the second delivery worker's join), then the rate
        self.load = Load(self.settings, self.outbox_engine, WARMUP_RATE, self.tag)
        self.load.start()
        deadline = time.monotonic() + ready_timeout
        ok = [r for r in self.receivers.values() if r.spec.always_ok]
        while not all(any(req[3] == 204 for req in r.requests) for r in ok):
            self.check()
            if time.monotonic() > deadline:
                raise HookstreamError(f"no delivery reached every endpoint within {ready_timeout:.0f}s of starting; see {self.logs}")
            time.sleep(0.2)
        self.pause(2.0)  # the second delivery worker's join, if it came after the first deliveries
        self.load.rate = self.size.rate

    def check(self) -> None:
        self.workers.check()
        if self.load is not None and self.load.error is not None:
            raise HookstreamError(f"the load stopped: {self.load.error}")

    # -- faults
    def fault(self, label: str, endpoints: tuple[str, ...] | None = None, via: str | None = None) -> Fault:
        f = Fault(f"{self.prefix}{label}", time.time(), endpoints or tuple(self.receivers), via)
        self.faults.append(f)
        self.say(f"fault: {f.label}")
        return f

    def flowing(self, fault: Fault) -> float | None:
        """Seconds from the fault to the first 204, at its endpoints, of an event published after it."""
        published = self.load.published
        first = None
        for name in fault.endpoints:
            for t, _id, entity, status in list(self.receivers[name].requests):
                if status != 204 or t < fault.at:
                    continue
                row = published.get(entity)
                if row is None or row[1] < fault.at or (fault.via and row[2] != fault.via):
                    continue
                first = t if first is None else min(first, t)
        return None if first is None else round(first - fault.at, 2)

    def wait_flowing(self, fault: Fault) -> None:
        deadline = time.monotonic() + self.size.flowing_timeout
        while self.flowing(fault) is None:
            self.check()
            if time.monotonic() > deadline:
                return  # recorded as not flowing; the settle check says what is missing
            time.sleep(0.2)

    def pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check()
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    # -- the end
    def stop_load(self) -> None:
        if self.load is not None:
            self.load.stop()

    def expected(self) -> dict[str, dict[str, str]]:
        """Receiver name -> {delivery id: entity id} of every pair that must be accounted for."""
        from hookstream.core.wire import delivery_id

        out: dict[str, dict[str, str]] = {name: {} for name in self.receivers}
        for entity, (event, _sent, _via) in self.load.published.items():
            for name, r in self.receivers.items():
                if r.spec.tenant == event.tenant_id:
                    out[name][delivery_id(event.id, r.sub_id)] = entity
        return out

    def dead_letters(self) -> dict[str, str]:
        """Delivery id -> subscription id of every dead letter of this run."""
        from hookstream.delivery.dead_letters import read

        return {d.field("delivery_id"): d.field("subscription_id") for d in read(self.settings, timeout=30)}

    def settle(self) -> tuple[dict[str, dict[str, str]], dict[str, str], float | None]:
        """Wait (bounded) until every pair was delivered or dead-lettered."""
        expected = self.expected()
        started = time.monotonic()
        deadline = started + self.size.settle_timeout
        while True:
            dlq = self.dead_letters()
            missing = sum(len(self._missing(name, want, dlq)) for name, want in expected.items())
            if missing == 0:
                return expected, dlq, round(time.monotonic() - started, 1)
            if time.monotonic() > deadline:
                return expected, dlq, None
            self.pause(1.0)

    def _missing(self, name: str, want: dict[str, str], dlq: dict[str, str]) -> set[str]:
        delivered = {req[1] for req in self.receivers[name].requests if req[3] == 204}
        return set(want) - delivered - set(dlq)

    def retries_never_made(self, delivery_ids: set[str]) -> set[str]:
        """Those of ``delivery_ids`` whose last attempt in the attempt log failed (so a retry was
        due) and that were not attempted since: what a retry tier left paused looks like."""
        from sqlalchemy import bindparam, text

        from hookstream.core.db import make_engine

        engine = make_engine(self.settings.database_url, all_tenants=True)
        query = text("select delivery_id, status from delivery_attempts where delivery_id in :ids order by id").bindparams(
            bindparam("ids", expanding=True))
        last: dict[str, str] = {}
        try:
            with engine.connect() as conn:
                for delivery, status in conn.execute(query, {"ids": sorted(delivery_ids)}):
                    last[delivery] = status
        finally:
            engine.dispose()
        return {d for d, status in last.items() if status == "failed"}

    def tear_down(self) -> None:
        if self.load is not None and self.load.is_alive():
            self.load.stop(abort=True)
        self.workers.stop_all()
        for r in self.receivers.values():
            if r.proc is not None and r.proc.alive():
                r.proc.stop()
        if self.outbox_engine is not None:
            self.outbox_engine.dispose()


def judge(pipe: Pipeline, result: ScenarioResult, expected: dict[str, dict[str, str]], dlq: dict[str, str]) -> None:
    """The checks and the figures of a finished run, into ``result``."""
    problems = result.problems
    published = pipe.load.published
    maybe = set(pipe.load.failed)  # publishing reported failure: such an event may or may not exist
    sub_of = {r.sub_id: name for name, r in pipe.receivers.items()}
    all_expected = {d for want in expected.values() for d in want}
    result.events = len(published)
    result.pairs = len(all_expected)
    delivered_total = dlq_total = 0
    worst = 0.0
    for name, r in pipe.receivers.items():
        want = expected[name]
        first_ok: dict[str, float] = {}
        for t, webhook_id, entity, status in r.requests:
            result.requests += 1
            if status in (400, 401):
                problems.append(f"{name}: a request was refused ({status}): bad signature or payload, webhook-id {webhook_id}")
            if entity in maybe and entity not in published:
                continue
            if webhook_id not in want:
                what = "a pair never published" if entity not in published else "a webhook-id not its pair's"
                problems.append(f"{name}: request {webhook_id} (entity {entity}) is {what}")
                continue
            if want[webhook_id] != entity:
                problems.append(f"{name}: webhook-id {webhook_id} came with another event (entity {entity}, expected {want[webhook_id]})")
            if status == 204:
                if webhook_id in first_ok:
                    result.duplicates += 1
                else:
                    first_ok[webhook_id] = t
        mine = {d for d, sub in dlq.items() if sub == r.sub_id}
        missing = set(want) - set(first_ok) - mine
        if missing:
            stuck = pipe.retries_never_made(missing)
            result.missing += len(missing)
            result.stuck_retries += len(stuck)
            sample = ", ".join(f"{d} (entity {want[d]})" for d in sorted(missing)[:5])
            problems.append(f"{name}: {len(missing)} of {len(want)} pairs neither delivered nor dead-lettered ({len(stuck)} of them "
                            f"attempted, failed, and never retried), e.g. {sample}")
        if r.spec.fail_rate == 1.0:
            if set(want) - mine:
                problems.append(f"{name} (always failing): {len(set(want) - mine)} of {len(want)} pairs not dead-lettered")
        elif r.spec.always_ok and not r.away and mine:
            problems.append(f"{name} (always 204): {len(mine)} pairs dead-lettered, e.g. {sorted(mine)[0]}")
        delivered_total += len(first_ok)
        dlq_total += len(mine & set(want))
        if r.spec.always_ok and not r.away:
            for d, t in first_ok.items():
                worst = max(worst, t - published[want[d]][1])
    from hookstream.core.wire import delivery_id

    maybe_ids = {delivery_id(pipe.load.failed[e].id, r.sub_id) for e in maybe for r in pipe.receivers.values()}
    stray = [d for d, sub in dlq.items() if sub in sub_of and d not in all_expected and d not in maybe_ids]
    if stray:
        problems.append(f"{len(stray)} dead letters for pairs never published, e.g. {stray[0]}")
    result.delivered, result.dead_lettered = delivered_total, dlq_total
    result.worst_latency_s = round(worst, 2) if worst else None
    for f in pipe.faults:
        f.flowing_s = pipe.flowing(f)
        f.caught_up_s = _caught_up(pipe, f, expected)


def _caught_up(pipe: Pipeline, fault: Fault, expected: dict[str, dict[str, str]]) -> float | None:
    """Seconds from the fault to the last first-delivery, at the always-204 endpoints still in
    place, of the events published before it (None if one never came)."""
    published = pipe.load.published
    last = fault.at
    for name, r in pipe.receivers.items():
        if not r.spec.always_ok or r.away:
            continue
        first: dict[str, float] = {}
        for t, webhook_id, _entity, status in r.requests:
            if status == 204 and webhook_id not in first:
                first[webhook_id] = t
        for d, entity in expected[name].items():
            if published[entity][1] >= fault.at:
                continue
            if d not in first:
                return None
            last = max(last, first[d])
    return round(last - fault.at, 2)


# ---------------------------------------------------------------------- scenarios
def _broker_restart(pipe: Pipeline, ctx: "RunContext") -> None:
    from hookstream.shell.broker import pid_alive

    broker = ctx.broker
    pid = broker.status(timeout=2.0).pid
    if pid is None:
        raise HookstreamError("broker-restart: the run's broker is not running")
    f = pipe.fault("SIGKILL the broker, restart it")
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    port = int(ctx.bootstrap.split(",")[0].rsplit(":", 1)[1])
    while _listening(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _listening(port):
        who = subprocess.run(["ss", "-tanp", f"( sport = :{port} or dport = :{port} )"], capture_output=True, text=True).stdout
        raise HookstreamError(f"port {port} still answers after the broker was killed:\n{who}")
    broker.start(owner_pid=os.getpid())
    f.restored_at = time.time()
    pipe.wait_flowing(f)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _worker_kill(pipe: Pipeline, ctx: "RunContext") -> None:
    missing = [n for n in ("delivery-1", "delivery-2") if n not in pipe.workers.procs]
    if missing:  # after rolling-restart's scale-in, in a combined run: two delivery workers again
        for name in missing:
            pipe.workers.start(name)
        f = pipe.fault("scale out to 2 delivery workers")
        pipe.wait_flowing(f)
        pipe.pause(pipe.size.gap)
    for name, via in (("streams", None), ("relay", "outbox"), ("delivery-1", None), ("delivery-2", None)):
        f = pipe.fault(f"SIGKILL {name}, restart it", via=via)
        pipe.workers.signal(name, signal.SIGKILL)
        pipe.workers.start(name)
        f.restored_at = time.time()
        pipe.wait_flowing(f)
        pipe.pause(pipe.size.gap)


def _rolling_restart(pipe: Pipeline, ctx: "RunContext") -> None:
    for name in ("delivery-1", "delivery-2"):  # one at a time, as a deploy does
        f = pipe.fault(f"SIGTERM {name}, restart it")
        pipe.workers.signal(name, signal.SIGTERM)
        pipe.workers.start(name)
        f.restored_at = time.time()
        pipe.wait_flowing(f)
        pipe.pause(pipe.size.gap)
    f = pipe.fault("scale in 2 -> 1 delivery workers")
    pipe.workers.signal("delivery-2", signal.SIGTERM)
    f.restored_at = time.time()
    pipe.wait_flowing(f)
    pipe.pause(pipe.size.gap)
    f = pipe.fault("scale out 1 -> 3 delivery workers")
    pipe.workers.start("delivery-2")
    pipe.workers.start("delivery-3")
    f.restored_at = time.time()
    pipe.wait_flowing(f)
    pipe.pause(pipe.size.gap)
    f = pipe.fault("scale in 3 -> 1 delivery workers")
    pipe.workers.signal("delivery-3", signal.SIGTERM)
    pipe.workers.signal("delivery-2", signal.SIGTERM)
    f.restored_at = time.time()
    pipe.wait_flowing(f)


def _receiver_outage(pipe: Pipeline, ctx: "RunContext") -> None:
    receiver = pipe.receivers[OUTAGE_ENDPOINT]
    f = pipe.fault(f"{OUTAGE_ENDPOINT} away {pipe.size.outage:g}s", endpoints=(OUTAGE_ENDPOINT,))
    receiver.stop()
    pipe.pause(pipe.size.outage)
    receiver.start()
    f.restored_at = time.time()
    pipe.wait_flowing(f)


def _cluster_leaders(pipe: Pipeline, ctx: "RunContext") -> None:
    from hookstream.core.topics import DELIVERIES, EVENT_TOPICS

    cluster = ctx.cluster
    event_topic = pipe.settings.topic(sorted(EVENT_TOPICS.values())[0])
    targets = (
        (f"SIGKILL the leader of {DELIVERIES}", lambda: cluster.partition_leader(pipe.settings.topic(DELIVERIES), 0)),
        (f"SIGKILL the leader of {event_topic.removeprefix(pipe.settings.topic_prefix)}", lambda: cluster.partition_leader(event_topic, 0)),
        ("SIGKILL the active controller", cluster.active_controller),
    )
    for label, which in targets:
        node = which()
        f = pipe.fault(f"{label} (node {node}), bring it back")
        cluster.kill(node, signal.SIGKILL)
        pipe.wait_flowing(f)
        cluster.start_node(node)
        f.restored_at = time.time()
        pipe.pause(pipe.size.gap)


_RUNNERS: dict[str, Callable[[Pipeline, "RunContext"], None]] = {
    "broker-restart": _broker_restart,
    "worker-kill": _worker_kill,
    "rolling-restart": _rolling_restart,
    "receiver-outage": _receiver_outage,
    "cluster-leaders": _cluster_leaders,
}


@dataclasses.dataclass
class RunContext:
    """What a scenario runs against: a bootstrap, and the broker or cluster object it may act on."""

    bootstrap: str
    brokers: int = 1
    broker: Any = None  # LocalBroker (broker-restart kills and restarts it)
    cluster: Any = None  # LocalCluster (cluster-leaders)


def run_scenarios(names: list[str], size_name: str, ctx: RunContext, state_dir: Path,
                  progress: Callable[[str], None] | None = None) -> ScenarioResult:
    """Run the scenarios ``names`` one after the other on ONE pipeline on ``ctx``'s broker(s) (one
    start-up and one settling for all of them: the suite's short form), then check the whole run.
    The result holds the figures, one row per fault, and any problems."""
    unknown = [n for n in names if n not in _RUNNERS]
    if unknown or not names:
        raise HookstreamError(f"unknown scenario {', '.join(unknown) or '(none)'}; one of {', '.join(SCENARIOS)}")
    size = SIZES[size_name]
    label = "+".join(names)
    started = time.monotonic()
    result = ScenarioResult(label, size_name, ctx.brokers)

    def say(msg: str) -> None:
        result.timeline.append(f"{time.monotonic() - started:6.1f}s {msg}")
        if progress:
            progress(msg)
    pipe = Pipeline(label, size, state_dir, ctx.bootstrap, ctx.brokers)
    result.logs = str(pipe.logs)
    result.faults = pipe.faults
    pipe.say = say
    try:
        say(f"{label}: starting the pipeline")
        pipe.set_up()
        pipe.start_load()
        for i, name in enumerate(names):
            pipe.pause(size.lead if i == 0 else size.gap)
            say(f"{label}: {name}")
            pipe.scenario, pipe.prefix = name, (f"{name}: " if len(names) > 1 else "")
            _RUNNERS[name](pipe, ctx)
        pipe.pause(size.tail)
        pipe.stop_load()
        if pipe.load.error is not None:
            raise HookstreamError(f"the load stopped: {pipe.load.error}")
        say(f"{label}: {len(pipe.load.published)} events published; waiting for every delivery")
        expected, dlq, result.settle_s = pipe.settle()
        say(f"{label}: settled" if result.settle_s is not None else f"{label}: gave up waiting")
        judge(pipe, result, expected, dlq)
    finally:
        pipe.tear_down()
        result.total_s = round(time.monotonic() - started, 1)
    return result


def run(names: list[str], size_name: str, state_dir: Path, progress: Callable[[str], None] | None = None) -> list[ScenarioResult]:
    """``hookstream chaos``: each scenario apart, on a fresh broker (or three-node cluster) of its
    own, started here and stopped at the end."""
    from hookstream.core.settings import Settings
    from hookstream.shell.broker import LocalBroker

    results = []
    for name in names:
        base = state_dir / name
        shutil.rmtree(base, ignore_errors=True)
        if progress:
            progress(f"{name}: starting Kafka")
        if name in CLUSTER_SCENARIOS:
            from hookstream.shell.broker import LocalCluster  # the three-node cluster

            port = _free_port_run(6)
            settings = Settings.from_env({"HOOKSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}", "HOOKSTREAM_STATE_DIR": str(base / "kafka")})
            cluster = LocalCluster(settings, brokers=3)
            cluster.start(owner_pid=os.getpid())
            try:
                results.append(run_scenarios([name], size_name, RunContext(cluster.bootstrap, 3, cluster=cluster), base / "run", progress))
            finally:
                cluster.stop()
        else:
            port = free_port_pair()
            settings = Settings.from_env({"HOOKSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}", "HOOKSTREAM_STATE_DIR": str(base / "kafka")})
            broker = LocalBroker(settings)
            broker.start(owner_pid=os.getpid())
            try:
                results.append(run_scenarios([name], size_name, RunContext(settings.kafka_bootstrap, 1, broker=broker), base / "run", progress))
            finally:
                broker.stop()
    return results


def _free_port_run(count: int) -> int:
    """A port p such that p .. p+count-1 all bind now."""
    for _ in range(500):
        port = free_port()
        if port + count > 32000:
            continue
        ok = True
        for p in range(port + 1, port + count):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise HookstreamError(f"no {count} consecutive free ports found in 20000-32000")


# ---------------------------------------------------------------------- the receiver process
def _receiver_main(argv: list[str]) -> None:
    """``python -m hookstream.shell.chaos receive --port P --secret whsec_... --fail-rate F``:
    ``hookstream receive``'s app (verifies every signature; 503 for a share of authentic requests),
    plus one JSON line on stdout per request: time, webhook-id, the event's entity id, status."""
    import argparse
    import asyncio

    from aiohttp import web

    from hookstream.schemas import entity_field
    from hookstream.shell.receiver import create_app, fixed_secrets

    parser = argparse.ArgumentParser(prog="chaos-receiver")
    parser.add_argument("command", choices=["receive"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--fail-status", type=int, default=503)
    args = parser.parse_args(argv)

    @web.middleware
    async def report(request: web.Request, handler):
        body = await request.read()  # cached: the handler reads the same bytes
        response = await handler(request)
        if response.status == 503 and args.fail_status != 503:  # the app's simulated failure
            response = web.Response(status=args.fail_status)
        entity = None
        try:
            doc = orjson.loads(body)
            entity = doc["data"][entity_field(doc["type"])]
        except Exception:  # noqa: BLE001 - a request we cannot tie to an event is reported without one
            pass
        sys.stdout.write(orjson.dumps({"t": time.time(), "id": request.headers.get("webhook-id", ""), "entity": entity,
                                       "status": response.status}).decode() + "\n")
        sys.stdout.flush()
        return response

    app = create_app(fixed_secrets(args.secret), printer=lambda _line: None, fail_rate=args.fail_rate)
    app.middlewares.append(report)

    async def serve() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", args.port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(serve())


if __name__ == "__main__":
    _receiver_main(sys.argv[1:])
