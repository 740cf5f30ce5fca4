"""Signed POSTs per second of one delivery worker process, end to end, on this machine.

A real broker (``HOOKSTREAM_KAFKA_BOOTSTRAP`` if one answers there, else a local one started for
the run), real topics, subscriptions from the store, and ``hookstream delivery worker`` as its own
process with its defaults (attempt log in SQLite, metrics off). A minimal uvloop HTTP/1.1
receiver (keep-alive, answers 200 at once) runs in another process on 127.0.0.1 and counts.

The deliveries topic is filled first (``--records`` records over ``--endpoints`` subscriptions),
then the worker is started; the rate is measured over the middle of the run (from 10% to 90% of
the records received), so start-up and the tail are left out. Also printed: the worker's CPU per
delivery (all its threads, from /proc) and how busy the receiver was.

    PYTHONPATH=. .venv/bin/python bench/delivery.py [--records 100000] [--endpoints 8] [--rounds 3]

Not a test: numbers depend on the machine and on whatever else it is running.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from hookstream.shell.machine import cpu_model
from raw_receiver import RawReceiver


# --- receiver (its own process) -----------------------------------------------------------------
async def _serve() -> None:
    import uvloop  # noqa: F401

    loop = asyncio.get_running_loop()
    server = await loop.create_server(RawReceiver, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    while True:  # answer "count" queries on stdin until it closes
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        print(RawReceiver.count, flush=True)
    server.close()


class ReceiverProcess:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def count(self) -> int:
        self.proc.stdin.write("?\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def cpu_seconds(self) -> float:
        return _cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(10)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of a process's threads by kind: ``main`` (the event loop), ``python`` (its
    other Python threads: the attempt-log writer, the subscriptions view), ``librdkafka``,
    ``pyreqwest`` (the HTTP client's runtime)."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                head, _, tail = f.read().rpartition(")")
        except FileNotFoundError:
            continue
        comm = head.split("(", 1)[1]
        fields = tail.split()
        kind = ("main" if tid == str(pid) else "librdkafka" if comm.startswith("rdk:")
                else "pyreqwest" if comm.startswith("pyreqwest") or comm.startswith("tokio") else "python")
        out[kind] = out.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


# --- the run --------------------------------------------------------------------------------------
def _broker(tmp: str):
    from hookstream.shell.broker import LocalBroker, _answers_metadata
    from hookstream.core.settings import Settings

    given = os.environ.get("HOOKSTREAM_KAFKA_BOOTSTRAP")
    if given and _answers_metadata(given, 5.0):
        return given, None
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tests.conftest import _free_port_pair

    port = _free_port_pair()
    env = dict(os.environ, HOOKSTREAM_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}", HOOKSTREAM_STATE_DIR=os.path.join(tmp, "kafka"))
    broker = LocalBroker(Settings.from_env(env))
    broker.start()
    return broker.settings.kafka_bootstrap, broker


def _fill(settings, subs: list[str], records: int) -> None:
    from hookstream.core.kafka import make_producer
    from hookstream.core.wire import DeliveryRecord, delivery_id
    from hookstream.core.topics import DELIVERIES

    producer = make_producer(settings, **{"linger.ms": 50, "batch.size": 1_000_000, "queue.buffering.max.messages": 1_000_000,
                                          "client.id": "bench-delivery"})
    topic = settings.topic(DELIVERIES)
    occurred = "2027-01-15T08:00:00.000000Z"
    for i in range(records):
        sub = subs[i % len(subs)]
        event_id = str(uuid.uuid4())
        data = {"id": f"in_{i}", "amount": "1200.00", "currency": "EUR", "customer": "cus_NffrFeUfNV2Hib"}
        rec = DeliveryRecord(
            delivery_id=delivery_id(event_id, sub), subscription_id=sub, tenant_id="bench", event_id=event_id,
            event_type="invoice.paid", occurred_at=occurred,
            event={"id": event_id, "type": "invoice.paid", "tenant_id": "bench", "occurred_at": occurred, "schema_version": 1, "data": data},
        )
        while True:
            try:
                producer.produce(topic, key=sub.encode(), value=rec.to_bytes())
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0


def one_round(bootstrap: str, tmp: str, records: int, endpoints: int, extra_env: dict[str, str]) -> dict:
    from hookstream.core.settings import Settings
    from hookstream.subscriptions.store import SubscriptionStore
    from hookstream.subscriptions.topic import publish_pending
    from hookstream.core.topics import ensure_topics

    run_dir = tempfile.mkdtemp(dir=tmp)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKSTREAM_")}
    env.update(
        HOOKSTREAM_KAFKA_BOOTSTRAP=bootstrap, HOOKSTREAM_TOPIC_PREFIX=f"bench{uuid.uuid4().hex[:8]}.",
        HOOKSTREAM_STATE_DIR=os.path.join(run_dir, "state"), HOOKSTREAM_DATABASE_URL=f"sqlite:///{run_dir}/hookstream.db",
        HOOKSTREAM_ALLOW_HTTP="1", HOOKSTREAM_ALLOWED_NETWORKS="127.0.0.0/8", **extra_env,
    )
    settings = Settings.from_env(env)
    ensure_topics(settings)
    receiver = ReceiverProcess()
    store = SubscriptionStore.open(settings)
    subs = [store.add("bench", f"http://127.0.0.1:{receiver.port}/hooks/{n}", ["*"])[0].id for n in range(endpoints)]
    publish_pending(settings)
    store.engine.dispose()
    _fill(settings, subs, records)

    log = open(os.path.join(run_dir, "worker.log"), "wb")
    profile = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
    worker = subprocess.Popen([sys.executable, *profile, "-m", "hookstream", "delivery", "worker", "--loglevel", "warning"],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    marks: list[tuple[float, int, float, float, dict]] = []  # (time, received, worker cpu, receiver cpu, by thread)
    deadline = time.monotonic() + 600
    try:
        while True:
            n = receiver.count()
            marks.append((time.monotonic(), n, _cpu_seconds(worker.pid), receiver.cpu_seconds(), _thread_cpu(worker.pid)))
            if n >= records or time.monotonic() > deadline or worker.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        worker.terminate()
        worker.wait(60)
        receiver.stop()
        log.close()
    if marks[-1][1] < records:
        raise SystemExit(f"only {marks[-1][1]} of {records} delivered; see {run_dir}/worker.log")
    lo = next(m for m in marks if m[1] >= records * 0.1)
    hi = next(m for m in marks if m[1] >= records * 0.9)
    seconds = hi[0] - lo[0]
    delivered = hi[1] - lo[1]
    return {
        "rate": delivered / seconds,
        "worker_us": (hi[2] - lo[2]) / delivered * 1e6,
        "worker_cores": (hi[2] - lo[2]) / seconds,
        "receiver_busy": (hi[3] - lo[3]) / seconds,
        "threads_us": {k: (hi[4].get(k, 0.0) - lo[4].get(k, 0.0)) / delivered * 1e6 for k in sorted(hi[4])},
    }


def main() -> None:
    if "--serve" in sys.argv:
        import uvloop

        uvloop.run(_serve())
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--endpoints", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the worker (e.g. HOOKSTREAM_ENDPOINT_CONCURRENCY=128)")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory(prefix="hs-bench-delivery-") as tmp:
        bootstrap, broker = _broker(tmp)
        try:
            print(f"# {os.cpu_count()} cores ({cpu_model()}), Python {platform.python_version()}, "
                  f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
            print(f"# {args.records} records over {args.endpoints} endpoint(s), rate from 10% to 90% received, worker env {extra or 'defaults'}")
            results = []
            for r in range(args.rounds):
                res = one_round(bootstrap, tmp, args.records, args.endpoints, extra)
                results.append(res)
                print(f"round {r + 1}: {res['rate']:,.0f} deliveries/s, worker {res['worker_us']:.0f} us CPU per delivery "
                      f"({res['worker_cores']:.2f} cores), receiver {res['receiver_busy']:.0%} of a core; by thread: "
                  + ", ".join(f"{k} {v:.0f}" for k, v in res["threads_us"].items()), flush=True)
            print(f"median: {statistics.median(r['rate'] for r in results):,.0f} signed POSTs/s per worker process "
                  f"(load average now {os.getloadavg()[0]:.2f})")
        finally:
            if broker is not None:
                broker.stop()


if __name__ == "__main__":
    main()
