"""Which HTTP client should the delivery worker's hot path use? Measure, on this machine.

A minimal HTTP/1.1 receiver (raw uvloop protocol, keep-alive, answers 200 with an empty body)
runs in its own process on 127.0.0.1, so it does not share the client's interpreter. Each client
then POSTs the same small signed JSON body (built with ``delivery.envelope`` and signed once with
``delivery.signing``: signing cost is the same for every client and is not what is measured) with
keep-alive, at each concurrency, a pool as large as the concurrency, redirects off. Each run is
bounded by a request count and a time cap; the median of the rounds is printed: req/s, the
client's CPU per request (all its threads: a client with a native runtime thread may be using the
second core), and how busy the receiver was (near 100% of a core: the receiver was the limit).

    PYTHONPATH=. .venv/bin/python bench/http_clients.py [--requests 10000] [--rounds 3]

Not a test: numbers depend on the machine and on whatever else it is running.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

import uvloop

from hookstream.delivery.envelope import payload
from hookstream.delivery.signing import Secret, build_headers
from hookstream.shell.machine import cpu_model
from raw_receiver import RawReceiver

CONCURRENCIES = (1, 16, 64, 256)

Post = Callable[[], Awaitable[int]]


class Run(NamedTuple):
    rate: float  # requests per second
    client_us: float  # client process CPU per request, all its threads, in microseconds
    receiver_busy: float  # share of one core the receiver used: near 1.0 means it was the limit


# --- receiver (its own process) -----------------------------------------------------------------


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(RawReceiver, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    server.close()


def _start_receiver() -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    port = int(proc.stdout.readline())
    return proc, port


# --- clients -------------------------------------------------------------------------------------


def _request() -> tuple[bytes, dict[str, str]]:
    body = payload(
        "invoice.paid",
        dt.datetime(2027, 1, 15, 8, 0, tzinfo=dt.timezone.utc),
        {"id": "in_1MtHbELkdIwHu7ixl4OzzPMv", "amount": 1200, "currency": "eur", "customer": "cus_NffrFeUfNV2Hib"},
    )
    headers = build_headers("msg_2MtHbELkdIwHu7ix", int(time.time()), body, Secret.generate())
    return body, headers


async def _httpx(url: str, concurrency: int, body: bytes, headers: dict[str, str]):
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = httpx.AsyncClient(limits=limits, follow_redirects=False, timeout=15.0)

    async def post() -> int:
        response = await client.post(url, content=body, headers=headers)
        return response.status_code

    return post, client.aclose


async def _aiohttp(url: str, concurrency: int, body: bytes, headers: dict[str, str]):
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=15.0))

    async def post() -> int:
        async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
            await response.read()
            return response.status

    return post, session.close


async def _pyreqwest(url: str, concurrency: int, body: bytes, headers: dict[str, str]):
    from pyreqwest.client import ClientBuilder

    client = (
        ClientBuilder()
        .max_connections(concurrency)
        .pool_max_idle_per_host(concurrency)
        .follow_redirects(False)
        .timeout(dt.timedelta(seconds=15))
        .build()
    )

    async def post() -> int:
        response = await client.post(url).headers(headers).body_bytes(body).build().send()
        await response.bytes()
        return response.status

    return post, client.close


def _available_clients() -> dict[str, Callable]:
    clients = {"httpx": _httpx, "aiohttp": _aiohttp}
    try:
        import pyreqwest  # noqa: F401
    except ImportError:
        print("pyreqwest not installed: skipped", file=sys.stderr)
    else:
        clients["pyreqwest"] = _pyreqwest
    return clients


# --- measuring ------------------------------------------------------------------------------------


async def _drive(post: Post, concurrency: int, requests: int, max_seconds: float) -> tuple[int, float]:
    """``concurrency`` workers share ``requests``; stops early at ``max_seconds``. -> (done, elapsed)."""
    remaining = requests
    done = 0
    deadline = time.perf_counter() + max_seconds

    async def worker() -> None:
        nonlocal remaining, done
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            status = await post()
            if status != 200:
                raise RuntimeError(f"receiver answered {status}")
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, time.perf_counter() - start


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc: tells whether the receiver was the limit."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _measure(make, url: str, concurrency: int, receiver_pid: int, args: argparse.Namespace) -> Run:
    body, headers = _request()
    post, close = await make(url, concurrency, body, headers)
    try:
        await _drive(post, concurrency, max(200, concurrency * 4), max_seconds=10.0)  # warm the pool
        receiver_before, client_before = _cpu_seconds(receiver_pid), time.process_time()
        done, elapsed = await _drive(post, concurrency, args.requests, args.max_seconds)
        client_cpu = time.process_time() - client_before  # every thread of ours, a client's native ones too
        receiver_cpu = _cpu_seconds(receiver_pid) - receiver_before
    finally:
        await close()
    return Run(rate=done / elapsed, client_us=client_cpu / done * 1e6, receiver_busy=receiver_cpu / elapsed)


def _machine() -> str:
    model = cpu_model()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, uvloop {uvloop.__version__}, load average {load}"


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("httpx", "aiohttp", "pyreqwest"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found)


def _run(args: argparse.Namespace) -> None:
    receiver, port = _start_receiver()
    url = f"http://127.0.0.1:{port}/hook"
    print(f"# {_machine()}\n# {_versions()}")
    print(f"# {args.requests} requests per run (cap {args.max_seconds:.0f} s), median of {args.rounds} rounds, req/s")
    print(f"{'client':<10}" + "".join(f"{f'c={c}':>10}" for c in CONCURRENCIES))
    clients = _available_clients()
    medians: dict[tuple[str, int], Run] = {}
    try:
        for name, make in clients.items():
            for concurrency in CONCURRENCIES:
                runs = [_run_with_uvloop(_measure(make, url, concurrency, receiver.pid, args)) for _ in range(args.rounds)]
                medians[name, concurrency] = Run(*(statistics.median(values) for values in zip(*runs)))
            print(f"{name:<10}" + "".join(f"{medians[name, c].rate:>10,.0f}" for c in CONCURRENCIES), flush=True)
        _table("client CPU per request, microseconds (all threads of the client process)", clients, medians, "client_us", "{:>10,.0f}")
        _table("receiver CPU, share of one core (near 100% means the receiver was the limit)", clients, medians, "receiver_busy", "{:>10.0%}")
    finally:
        receiver.stdin.close()
        receiver.wait(timeout=10)


def _table(title: str, clients, medians, field: str, fmt: str) -> None:
    print(f"# {title}")
    for name in clients:
        print(f"{name:<10}" + "".join(fmt.format(getattr(medians[name, c], field)) for c in CONCURRENCIES))


def _run_with_uvloop(coro):
    """A fresh uvloop per run, as the worker will run on uvloop; no pool survives between runs."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000, help="requests per measured run")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="time cap per measured run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per client and concurrency; the median is shown")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _run_with_uvloop(_serve())
    else:
        _run(args)


if __name__ == "__main__":
    main()
