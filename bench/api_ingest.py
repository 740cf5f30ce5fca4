"""Ingest through the HTTP API: latency at a fixed rate, the most requests/s, batch events/s.

    .venv/bin/hookstream kafka start                      # a broker on HOOKSTREAM_KAFKA_BOOTSTRAP
    .venv/bin/python bench/api_ingest.py [--seconds 20] [--rate 500] [--concurrency 32] [--code DIR]

Starts its own `hookstream api` process (a free port, a temporary database, its own topic
prefix, rate limit off) and one tenant key, then, from this process (uvloop, one aiohttp session
with keep-alive connections):

1. open loop: single events at ``--rate`` requests/s for ``--seconds``; each request's latency
   is measured from the moment it was due (so a stall is not hidden by the requests it delays);
   p50/p99/max and how many were late to start;
2. closed loop: ``--concurrency`` clients posting single events back to back: requests/s;
3. batches of ``--batch`` events from 4 clients back to back: events/s.

With ``--idempotency-keys`` every request carries a new ``Idempotency-Key`` (the idempotency
store is then on every request's path).

Every request must answer 202 (else the run stops and says what came back). Client and server
share the machine: the figures are per machine, not per API process alone. Each phase also
reports the API process's CPU time (user + system, from /proc) per 1,000 events: steadier than
latency on a shared machine. ``--code DIR`` runs the server from another checkout (``git archive
<commit> | tar -x -C DIR``) with this same client: an A/B in one sitting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from hookstream.schemas import example

ROOT = Path(__file__).resolve().parents[1]


def _event(i: int) -> dict:
    data = {**example("payment.received"), "payment_id": f"pay_{i:012d}"}
    return {"type": "payment.received", "data": data}


# Request bodies are made before the clock starts and reused (the server gives every event a new
# id: nothing is idempotent here), so the client spends its CPU on HTTP, not on making JSON: it
# shares the machine with the server it measures.
_POOL = 1000


def _single_bodies() -> list[bytes]:
    return [json.dumps(_event(i)).encode() for i in range(_POOL)]


def _batch_bodies(size: int, count: int = 8) -> list[bytes]:
    return [json.dumps({"events": [_event(b * size + k) for k in range(size)]}).encode() for b in range(count)]


def start_api(env: dict[str, str], code: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "hookstream", "api"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, cwd=code)
    lines: queue.Queue = queue.Queue()

    def drain() -> None:  # the whole time: a full stderr pipe would stall the server
        for line in process.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line is None:
            break
        if line.startswith("listening on "):
            return process, line.split()[-1]
    process.kill()
    raise SystemExit("hookstream api did not start")


class CpuMeter:
    """CPU seconds (user + system, every thread) a process has used, from /proc/<pid>/stat."""

    def __init__(self, pid: int) -> None:
        self.path = f"/proc/{pid}/stat"
        self.tick = os.sysconf("SC_CLK_TCK")

    def seconds(self) -> float:
        with open(self.path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.tick  # utime, stime (fields 14, 15)


async def _measured(cpu: CpuMeter, events: Callable[[dict], int], phase: Awaitable[dict]) -> dict:
    before = cpu.seconds()
    result = await phase
    used = cpu.seconds() - before
    result["server_cpu_s"] = round(used, 2)
    result["server_cpu_ms_per_1000_events"] = round(1000 * 1000 * used / max(1, events(result)), 1)
    return result


IDEMPOTENT = False  # --idempotency-keys: every request carries a new Idempotency-Key


async def _post(session: aiohttp.ClientSession, url: str, body: bytes) -> None:
    headers = {"Content-Type": "application/json"}
    if IDEMPOTENT:
        headers["Idempotency-Key"] = uuid.uuid4().hex
    async with session.post(url, data=body, headers=headers) as response:
        text = await response.read()
        if response.status != 202:
            raise SystemExit(f"{url}: {response.status} {text[:300]!r}")


async def open_loop(session, base: str, rate: float, seconds: float) -> dict:
    url = f"{base}/v1/events"
    total = int(rate * seconds)
    latencies: list[float] = []
    late = 0
    bodies = _single_bodies()
    start = time.perf_counter() + 0.2

    async def one(i: int, due: float) -> None:
        await _post(session, url, bodies[i % _POOL])
        latencies.append(time.perf_counter() - due)

    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.001:
            late += 1
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    return {"requests": total, "rate": rate, "p50_ms": round(statistics.median(ms), 2),
            "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 2), "max_ms": round(ms[-1], 2), "late_starts": late}


async def _back_to_back(clients: int, seconds: float, send: Callable[[int, int], Awaitable[int]]) -> float:
    """``clients`` workers, each calling ``await send(worker, n)`` back to back for ``seconds``
    (``n``: how many events it sent before; ``send`` returns how many it sends): events/s."""
    total = 0
    stop = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal total
        n = 0
        while time.perf_counter() < stop:
            sent = await send(w, n)
            n += sent
            total += sent

    began = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(clients)))
    return total / (time.perf_counter() - began)


async def closed_loop(session, base: str, concurrency: int, seconds: float) -> dict:
    url = f"{base}/v1/events"
    bodies = _single_bodies()

    async def one(w: int, n: int) -> int:
        await _post(session, url, bodies[(w * 7919 + n) % _POOL])
        return 1

    rate = await _back_to_back(concurrency, seconds, one)
    return {"concurrency": concurrency, "requests_per_s": round(rate), "events": round(rate * seconds)}


async def batches(session, base: str, size: int, seconds: float, clients: int = 4) -> dict:
    url = f"{base}/v1/events/batch"
    bodies = _batch_bodies(size)

    async def batch(w: int, n: int) -> int:
        await _post(session, url, bodies[(w + n // size) % len(bodies)])
        return size

    rate = await _back_to_back(clients, seconds, batch)
    return {"batch": size, "clients": clients, "events_per_s": round(rate), "events": round(rate * seconds)}


async def run(base: str, key: str, args, cpu: CpuMeter) -> dict:
    connector = aiohttp.TCPConnector(limit=max(args.concurrency, 64), keepalive_timeout=60)
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        await open_loop(session, base, min(args.rate, 100), 2)  # warm up: connections, topics' metadata
        return {
            "open_loop": await _measured(cpu, lambda r: r["requests"], open_loop(session, base, args.rate, args.seconds)),
            "closed_loop": await _measured(cpu, lambda r: r["events"], closed_loop(session, base, args.concurrency, args.seconds)),
            "batch": await _measured(cpu, lambda r: r["events"], batches(session, base, args.batch, args.seconds)),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--idempotency-keys", action="store_true", help="send a new Idempotency-Key with every request")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout the API server runs from (default: this one)")
    args = parser.parse_args()
    code = args.code.resolve()
    global IDEMPOTENT
    IDEMPOTENT = args.idempotency_keys

    from hookstream.core.settings import Settings
    from hookstream.core.topics import ensure_topics

    with tempfile.TemporaryDirectory(prefix="hookstream-api-bench-") as tmp:
        env = dict(os.environ, HOOKSTREAM_STATE_DIR=f"{tmp}/state", HOOKSTREAM_DATABASE_URL=f"sqlite:///{tmp}/bench.db",
                   HOOKSTREAM_TOPIC_PREFIX=f"bench{uuid.uuid4().hex[:6]}.", HOOKSTREAM_API_PORT="0", HOOKSTREAM_API_RATE_LIMIT="0")
        ensure_topics(Settings.from_env(env))
        created = subprocess.run([sys.executable, "-m", "hookstream", "api-keys", "create", "--tenant", "bench", "--json"],
                                 env=env, capture_output=True, text=True, check=True, cwd=code)
        key = json.loads(created.stdout)["key"]
        process, base = start_api(env, code)
        try:
            try:
                import uvloop

                uvloop.install()
            except ImportError:
                pass
            result = asyncio.run(run(base, key, args, CpuMeter(process.pid)))
        finally:
            process.terminate()
            process.wait(timeout=30)
    result["code"] = str(code)
    result["idempotency_keys"] = IDEMPOTENT
    result["machine"] = {"cpus": os.cpu_count(), "load_avg_1m_at_end": round(os.getloadavg()[0], 2)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
