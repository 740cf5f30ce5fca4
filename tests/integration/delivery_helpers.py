"""Helpers for the delivery worker's integration tests: a real aiohttp receiver and records."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

from hookstream.core.wire import DeliveryRecord, delivery_id
from hookstream.core.settings import Settings
from hookstream.subscriptions.store import SubscriptionStore
from hookstream.subscriptions.topic import publish_pending
from hookstream.core.topics import DELIVERIES, ensure_topics
from tests.integration.pipeline import produce


@dataclasses.dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


Behaviour = Callable[[web.Request, int], Awaitable[web.StreamResponse]]


class Receiver:
    """An aiohttp server on 127.0.0.1 in its own thread; each path answers by its behaviour.

    A behaviour gets the request and how many times its path was hit before (0 for the first).
    Every request is recorded in ``hits`` (thread-safe appends).
    """

    def __init__(self) -> None:
        self.behaviours: dict[str, Behaviour] = {}
        self.hits: list[Hit] = []
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True, name="receiver")
        self.port = 0

    def route(self, path: str, behaviour: Behaviour) -> str:
        self.behaviours[path] = behaviour
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> "Receiver":
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(10)

    def hits_for(self, path: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path == path]

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stopping.wait()
        await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        with self._lock:
            n = self._counts.get(request.path, 0)
            self._counts[request.path] = n + 1
            self.hits.append(Hit(request.path, {k.lower(): v for k, v in request.headers.items()}, body, time.time()))
        behaviour = self.behaviours.get(request.path)
        if behaviour is None:
            return web.Response(status=404)
        return await behaviour(request, n)


def status(code: int, **headers: str) -> Behaviour:
    async def answer(_request, _n):
        return web.Response(status=code, headers=headers, text=f"answer {code}")

    return answer


def fail_times(times: int, code: int = 500) -> Behaviour:
    async def answer(_request, n):
        return web.Response(status=code if n < times else 200, text="nope" if n < times else "ok")

    return answer


def fail_first_attempt(code: int = 500) -> Behaviour:
    """Fails the first request of every webhook-id, answers 200 to the next ones."""
    seen: set[str] = set()

    async def answer(request, _n):
        msg_id = request.headers.get("webhook-id", "")
        if msg_id in seen:
            return web.Response(status=200)
        seen.add(msg_id)
        return web.Response(status=code)

    return answer


def hang(seconds: float = 3600.0) -> Behaviour:
    async def answer(_request, _n):
        await asyncio.sleep(seconds)
        return web.Response(status=200)

    return answer


class BlackHole:
    """A hung endpoint: a socket that listens and never accepts. The kernel completes each TCP
    handshake and buffers the request, and no answer ever comes. It costs this process nothing,
    so the healthy receiver's timings are not disturbed by the hung endpoint's connections."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4096)
        self.port = self.sock.getsockname()[1]

    def url(self, path: str = "/hung") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.sock.close()


def make_record(subscription_id: str, tenant_id: str, n: int = 0, *, event_type: str = "invoice.sent") -> DeliveryRecord:
    event_id = str(uuid.uuid4())
    occurred = "2026-11-28T12:00:00.000000Z"
    envelope = {
        "id": event_id, "type": event_type, "tenant_id": tenant_id, "occurred_at": occurred,
        "schema_version": 1, "data": {"invoice_id": f"inv-{n}", "amount": "10.00", "currency": "EUR"},
    }
    return DeliveryRecord(
        delivery_id=delivery_id(event_id, subscription_id), subscription_id=subscription_id, tenant_id=tenant_id,
        event_id=event_id, event_type=event_type, occurred_at=occurred, event=envelope,
    )


def produce_records(settings: Settings, records: list[DeliveryRecord]) -> None:
    produce(settings, DELIVERIES, [(r.subscription_id.encode(), r.to_bytes()) for r in records])


def paced_produce(settings: Settings, records: list[DeliveryRecord], rate: float) -> dict[str, float]:
    """Produce ``records`` at ``rate`` per second; returns delivery id -> unix time the broker
    acknowledged it (from then on a consumer can read it). Latencies are measured from there, so
    the broker's own produce latency (which spikes to a second on a busy machine) stays out."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 0, "enable.idempotence": True})
    acked: dict[str, float] = {}
    start = time.monotonic()
    for i, record in enumerate(records):
        while (delay := start + i / rate - time.monotonic()) > 0:
            producer.poll(min(delay, 0.001))  # serve acknowledgements as they come, whatever the rate
        producer.produce(
            settings.topic(DELIVERIES), key=record.subscription_id.encode(), value=record.to_bytes(),
            on_delivery=lambda err, _m, d=record.delivery_id: acked.__setitem__(d, time.time()) if err is None else None,
        )
        producer.poll(0)
    assert producer.flush(30) == 0
    assert len(acked) == len(records)
    return acked


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))
    return ordered[index]


# ---------------------------------------------------------------------------- fixtures and steps
SCHEDULE = "200ms,400ms,600ms"


@pytest.fixture
def env(hs_env):
    return dict(
        hs_env, HOOKSTREAM_ALLOW_HTTP="1", HOOKSTREAM_ALLOWED_NETWORKS="127.0.0.0/8",
        HOOKSTREAM_RETRY_SCHEDULE=SCHEDULE, HOOKSTREAM_REQUEST_TIMEOUT="2s",
    )


@pytest.fixture
def cfg(env) -> Settings:
    s = Settings.from_env(env)
    ensure_topics(s)
    return s


@pytest.fixture
def store(cfg):
    return SubscriptionStore.open(cfg)


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def subscribe(store, cfg, tenant: str, url: str) -> tuple[str, str]:
    sub, secret = store.add(tenant, url, ["*"])
    publish_pending(cfg)
    return sub.id, secret


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def scrape(log: str) -> str:
    """GET the worker's /metrics (the port it printed)."""
    import urllib.request

    port = re.search(r"metrics: http://127.0.0.1:(\d+)/metrics", log).group(1)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def cli(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hookstream", *args], env=env, capture_output=True, text=True, timeout=60)
