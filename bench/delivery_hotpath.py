"""Where the delivery worker's CPU per request goes on the HTTP side (not a test).

Against ``bench/receiver.py`` (own process), one uvloop process POSTs the same signed body N
times at concurrency C with:

* ``plain``: pyreqwest ``build().send()`` + ``response.bytes()`` (the client alone);
* ``streamed``: ``build_streamed()`` + one bounded read, as ``delivery.transport`` does;
* ``transport``: ``delivery.transport.PyreqwestTransport.post`` itself (adds the pinned-client
  look-up and the response object);
* ``sign+transport``: ``build_headers`` per request, then ``transport``.

It prints CPU microseconds per request of this process (all threads) and req/s.

    PYTHONPATH=. .venv/bin/python bench/delivery_hotpath.py [--requests 20000] [--concurrency 256]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import subprocess
import sys
import time

import uvloop

from hookstream.delivery.envelope import payload
from hookstream.delivery.signing import Secret, build_headers
from hookstream.delivery.transport import READ_BYTES, PyreqwestTransport, _target
from hookstream.core.settings import Settings


async def drive(post, n: int, concurrency: int) -> tuple[float, float]:
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await post()

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - cpu0) / n * 1e6, n / (time.perf_counter() - t0)


async def main(args) -> None:
    recv = subprocess.Popen([sys.executable, "bench/receiver.py", "--stdin-lifetime"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    port = int(recv.stdout.readline())
    url = f"http://127.0.0.1:{port}/e/hot"
    settings = Settings.from_env({"HOOKSTREAM_ALLOW_HTTP": "1", "HOOKSTREAM_ALLOWED_NETWORKS": "127.0.0.0/8"})
    secret = Secret.generate()
    body = payload("payment.received", dt.datetime.now(dt.timezone.utc), {"payment_id": "pay_1", "amount": 1200, "currency": "eur"})
    headers = build_headers("msg_hot", int(time.time()), body, secret)
    transport = PyreqwestTransport(settings, max_connections_per_host=args.concurrency)
    client = transport._build(_target(url), None)

    async def plain():
        response = await client.post(url).headers(headers).body_bytes(body).build().send()
        await response.bytes()

    async def streamed():
        request = client.post(url).headers(headers).body_bytes(body).streamed_read_buffer_limit(READ_BYTES).build_streamed()
        async with request as response:
            await response.body_reader.read(READ_BYTES)

    async def via_transport():
        await transport.post(url, body, headers)

    async def sign_and_post():
        await transport.post(url, body, build_headers("msg_hot", int(time.time()), body, secret))

    print(f"# {args.requests} requests, concurrency {args.concurrency}, load average {os.getloadavg()[0]:.2f}")
    for name, post in (("plain", plain), ("streamed", streamed), ("transport", via_transport), ("sign+transport", sign_and_post)):
        await drive(post, 2000, args.concurrency)  # warm-up
        results = [await drive(post, args.requests, args.concurrency) for _ in range(args.rounds)]
        cpu = sorted(r[0] for r in results)[len(results) // 2]
        rate = sorted(r[1] for r in results)[len(results) // 2]
        print(f"{name:<16} {cpu:7.1f} us CPU/request  {rate:9,.0f} req/s")
    await transport.close()
    recv.stdin.close()
    recv.wait(10)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    uvloop.run(main(ap.parse_args()))
