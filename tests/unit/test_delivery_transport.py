"""hookstream.delivery.transport: pyreqwest pinned to checked addresses, no redirects, bounded bodies.

These use a loopback aiohttp server (no broker). The fake resolvers stand in for DNS.
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from hookstream.delivery.outcome import classify_response
from hookstream.delivery.transport import EXCERPT_BYTES, PyreqwestTransport, system_resolver
from hookstream.core.settings import Settings
from hookstream.subscriptions import urls
from hookstream.subscriptions.urls import Reason, UnsafeURLError, check_url
from tests.idn_cases import IDN_CASES, PRIVATE_ANSWERS, FirstPublicThenPrivate

LOCAL_ENV = {"HOOKSTREAM_ALLOW_HTTP": "1", "HOOKSTREAM_ALLOWED_NETWORKS": "127.0.0.0/8", "HOOKSTREAM_REQUEST_TIMEOUT": "1s"}
LOCAL = Settings.from_env(LOCAL_ENV)
STRICT = Settings.from_env({"HOOKSTREAM_ALLOW_HTTP": "1"})


@pytest.fixture
async def server():
    hits = []

    async def handle(request: web.Request) -> web.StreamResponse:
        hits.append((request.path, request.host))
        if request.path == "/redirect":
            raise web.HTTPFound("/target")
        if request.path == "/big":
            return web.Response(body=b"x" * (EXCERPT_BYTES * 200))
        if request.path == "/slow":
            await asyncio.sleep(2)
        if request.path == "/limited":
            return web.Response(status=429, headers={"Retry-After": "120"})
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield port, hits
    await runner.cleanup()


def resolver(*addresses):
    calls = []

    async def resolve(host, port):
        calls.append(host)
        return list(addresses)

    resolve.calls = calls
    return resolve


async def test_a_name_is_resolved_checked_and_pinned(server):
    port, hits = server
    resolve = resolver("127.0.0.1")
    t = PyreqwestTransport(LOCAL, resolver=resolve)
    response = await t.post(f"http://receiver.invalid:{port}/hook", b"{}", {"content-type": "application/json"})
    assert response.status == 200 and response.excerpt == b"ok"
    assert hits == [("/hook", f"receiver.invalid:{port}")]  # the Host header keeps the name
    await t.post(f"http://receiver.invalid:{port}/hook", b"{}", {})
    assert resolve.calls == ["receiver.invalid"]  # cached within the TTL
    await t.close()


async def test_a_refused_address_is_never_connected_to(server):
    port, hits = server
    t = PyreqwestTransport(STRICT, resolver=resolver("127.0.0.1"))
    with pytest.raises(UnsafeURLError, match="loopback"):
        await t.post(f"http://rebound.invalid:{port}/hook", b"{}", {})
    assert hits == []
    await t.close()


async def test_one_refused_address_among_several_refuses_the_host(server):
    port, hits = server
    t = PyreqwestTransport(LOCAL, resolver=resolver("127.0.0.1", "10.0.0.7"))
    with pytest.raises(UnsafeURLError, match="private"):
        await t.post(f"http://mixed.invalid:{port}/hook", b"{}", {})
    assert hits == []
    await t.close()


async def test_an_ip_literal_is_checked_too(server):
    port, hits = server
    t = PyreqwestTransport(STRICT)
    with pytest.raises(UnsafeURLError):
        await t.post(f"http://127.0.0.1:{port}/hook", b"{}", {})
    assert hits == []
    await t.close()


async def test_the_address_is_checked_again_after_the_ttl(server):
    port, _hits = server
    now = [0.0]
    answers = [["127.0.0.1"], ["169.254.169.254"]]

    async def rebinding(host, port):
        return answers.pop(0)

    t = PyreqwestTransport(LOCAL, resolver=rebinding, dns_ttl=60.0, clock=lambda: now[0])
    assert (await t.post(f"http://rebinder.invalid:{port}/", b"{}", {})).status == 200
    now[0] = 61.0
    with pytest.raises(UnsafeURLError, match="link-local"):
        await t.post(f"http://rebinder.invalid:{port}/", b"{}", {})
    await t.close()


async def test_redirects_are_not_followed(server):
    port, hits = server
    t = PyreqwestTransport(LOCAL)
    response = await t.post(f"http://127.0.0.1:{port}/redirect", b"{}", {})
    assert response.status == 302
    assert [h[0] for h in hits] == ["/redirect"]
    await t.close()


async def test_the_body_kept_is_bounded(server):
    port, _ = server
    t = PyreqwestTransport(LOCAL)
    response = await t.post(f"http://127.0.0.1:{port}/big", b"{}", {})
    assert response.status == 200 and len(response.excerpt) == EXCERPT_BYTES
    await t.close()


async def test_retry_after_reaches_the_classifier(server):
    port, _ = server
    t = PyreqwestTransport(LOCAL)
    response = await t.post(f"http://127.0.0.1:{port}/limited", b"{}", {})
    outcome = classify_response(response.status, headers=response.headers, now=0.0)
    assert outcome.retry_after == 120.0 and str(outcome.reason) == "rate_limited"
    await t.close()


async def test_the_request_timeout_applies(server):
    port, _ = server
    t = PyreqwestTransport(LOCAL)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TimeoutError) as caught:
        await t.post(f"http://127.0.0.1:{port}/slow", b"{}", {})
    assert loop.time() - start < 3.0
    assert str(classify_response(caught.value).reason) == "timeout"
    await t.close()


async def test_a_proxy_in_the_environment_is_ignored(server, monkeypatch):
    port, hits = server
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:1")
    t = PyreqwestTransport(LOCAL)
    assert (await t.post(f"http://127.0.0.1:{port}/direct", b"{}", {})).status == 200
    await t.close()


# ---------------------------------------------------------------------------- bounded memory
class _FakeClient:
    async def close(self) -> None:
        pass


class _NoBuild(PyreqwestTransport):
    """Pins and caches as the real one; builds a stand-in client (100,000 real ones is slow)."""

    def _build(self, target, pin):
        return _FakeClient()

    async def _new_client(self, target, pin):
        return self._build(target, pin)  # no thread hop: 100,000 of them would be the test's whole time


async def test_a_hundred_thousand_hosts_leave_only_the_recent_clients():
    from hookstream.delivery.transport import _target

    now = [0.0]
    t = _NoBuild(STRICT, resolver=resolver("93.184.216.34"), dns_ttl=1.0, clock=lambda: now[0])
    retired = []
    t._retire = retired.append
    largest = 0
    for i in range(100_000):
        now[0] = i / 1000  # 1,000 new hosts a second
        await t._client_for(_target(f"https://h{i}.example.com/hook"))
        largest = max(largest, len(t._pinned))
    assert largest <= 2 * 1000 + 1  # the hosts of the last TTL and of one sweep interval
    kept = {id(p.client) for p in t._pinned.values()}
    assert len(retired) == 100_000 - len(t._pinned)  # every client dropped was retired (closed later) ...
    assert not kept & {id(c) for c in retired}  # ... and none still in use


async def test_a_host_in_use_keeps_its_client_until_its_pin_expires():
    from hookstream.delivery.transport import _target

    now = [0.0]
    t = _NoBuild(STRICT, resolver=resolver("93.184.216.34"), dns_ttl=60.0, clock=lambda: now[0])
    retired = []
    t._retire = retired.append
    first = await t._client_for(_target("https://busy.example.com/a"))
    now[0] = 59.0
    await t._client_for(_target("https://other.example.com/"))
    assert await t._client_for(_target("https://busy.example.com/b")) is first and retired == []
    now[0] = 121.0  # both expired; the sweep drops them, and busy.example.com is pinned afresh
    again = await t._client_for(_target("https://busy.example.com/c"))
    assert again is not first and first in retired and len(t._pinned) == 1


# ---------------------------------------------------------------------------- internationalised names
class AsyncDNS:
    """``FirstPublicThenPrivate`` for the transport: the first answer is the loopback test server
    (allowed by LOCAL's HOOKSTREAM_ALLOWED_NETWORKS), every later one ``private``."""

    def __init__(self, private: str) -> None:
        self.dns = FirstPublicThenPrivate("127.0.0.1", private)

    async def __call__(self, host: str, port: int) -> list[str]:
        return self.dns(host, port)

    @property
    def lookups(self) -> list[str]:
        return self.dns.lookups


@pytest.mark.parametrize(("private", "private_reason"), PRIVATE_ANSWERS)
@pytest.mark.parametrize(("host", "expected"), IDN_CASES, ids=[ascii(h)[1:-1] for h, _ in IDN_CASES])
async def test_an_internationalised_host_is_pinned_on_the_name_the_client_connects_to(server, host, expected, private, private_reason):
    port, hits = server
    dns, now = AsyncDNS(private), [0.0]
    t = PyreqwestTransport(LOCAL, resolver=dns, dns_ttl=60.0, clock=lambda: now[0])
    url = f"http://{host}:{port}/hook"  # as a subscription stored before canonical URLs would hold it
    try:
        if isinstance(expected, Reason):
            with pytest.raises(UnsafeURLError) as caught:
                await t.post(url, b"{}", {})
            assert caught.value.reason == expected, str(caught.value)
            assert (dns.lookups, hits) == ([], [])  # refused before any lookup or connection
            return
        assert (await t.post(url, b"{}", {})).status == 200
        # .invalid resolves nowhere but in the fake: the request reached the server through the pin
        assert [h.rsplit(":", 1)[0].removesuffix(".") for _, h in hits] == [expected]
        assert [h.removesuffix(".") for h in dns.lookups] == [expected] and all(h.isascii() for h in dns.lookups)
        now[0] = 61.0  # the pin expires; the name now rebinds to a private address
        with pytest.raises(UnsafeURLError) as caught:
            await t.post(url, b"{}", {})
        assert caught.value.reason == private_reason
        assert len(hits) == 1  # never connected to the private address
    finally:
        await t.close()


async def test_a_canonical_url_reaches_the_same_pinned_host(server):
    port, hits = server
    dns = AsyncDNS("10.0.0.1")
    t = PyreqwestTransport(LOCAL, resolver=dns)
    canonical = check_url(f"http://B\u00fccher.invalid:{port}/hook", LOCAL, resolver=lambda host, p: ["127.0.0.1"]).url
    assert canonical == f"http://xn--bcher-kva.invalid:{port}/hook"
    assert (await t.post(canonical, b"{}", {})).status == 200
    assert hits == [("/hook", f"xn--bcher-kva.invalid:{port}")] and dns.lookups == ["xn--bcher-kva.invalid"]
    await t.close()


async def test_a_url_the_client_would_read_as_another_host_is_refused(server, monkeypatch):
    port, hits = server
    dns = AsyncDNS("10.0.0.1")
    t = PyreqwestTransport(LOCAL, resolver=dns)

    def elsewhere(url):  # a client whose parser disagreed with ours would connect to an unpinned name
        return "unpinned.invalid", port

    monkeypatch.setattr(urls, "client_host", elsewhere)
    with pytest.raises(UnsafeURLError) as caught:
        await t.post(f"http://disagree.invalid:{port}/hook", b"{}", {})
    assert caught.value.reason == Reason.CLIENT_DISAGREES and "unpinned.invalid" in str(caught.value)
    assert (dns.lookups, hits) == ([], [])
    await t.close()


async def test_the_system_resolver_never_maps_a_unicode_name_itself():
    with pytest.raises(UnicodeError):  # Python's getaddrinfo would apply IDNA 2003 (straße -> strasse)
        await system_resolver("stra\u00dfe.invalid", 443)


async def test_allowed_ports_are_checked_at_connect_time(server):
    port, hits = server
    dns = AsyncDNS("10.0.0.1")
    only = Settings.from_env({**LOCAL_ENV, "HOOKSTREAM_ALLOWED_PORTS": "443,8443"})
    t = PyreqwestTransport(only, resolver=dns)
    with pytest.raises(UnsafeURLError) as caught:
        await t.post(f"http://receiver.invalid:{port}/hook", b"{}", {})
    assert caught.value.reason == Reason.PORT_NOT_ALLOWED and f"port {port} is not allowed" in str(caught.value)
    with pytest.raises(UnsafeURLError):  # an IP literal too
        await t.post(f"http://127.0.0.1:{port}/hook", b"{}", {})
    assert (dns.lookups, hits) == ([], [])
    await t.close()
    opened = PyreqwestTransport(Settings.from_env({**LOCAL_ENV, "HOOKSTREAM_ALLOWED_PORTS": f"443,{port}"}), resolver=dns)
    assert (await opened.post(f"http://receiver.invalid:{port}/hook", b"{}", {})).status == 200
    await opened.close()


# ---------------------------------------------------------------------------- DNS bounded and isolated
async def test_a_lookup_that_never_answers_is_bounded_and_not_cached():
    from hookstream.delivery.errors import EndpointUnreachable

    calls = []

    async def silent(host, port):
        calls.append(host)
        await asyncio.Event().wait()  # an authoritative server that never answers

    t = PyreqwestTransport(LOCAL, resolver=silent)  # request timeout 1 s: the lookup gets at most that
    for _ in range(2):
        with pytest.raises(EndpointUnreachable, match="did not resolve within 1s"):
            await asyncio.wait_for(t.post("http://silent.invalid/hook", b"{}", {}), 30)
    assert calls == ["silent.invalid", "silent.invalid"]  # looked up again: a timeout is no refusal
    await t.close()


def _blocking_dns(monkeypatch):
    """socket.getaddrinfo answering 127.0.0.1 at once, except for names starting with ``slow``,
    which hang until released (at most 20 s). ``answered`` lists the slow names that returned."""
    import socket
    import threading

    release, answered = threading.Event(), []

    def lookup(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name.startswith("slow"):
            release.wait(20)
            answered.append(name)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    return release, answered


async def test_one_tenants_hanging_names_do_not_hold_up_another_tenants_pin(monkeypatch):
    from hookstream.delivery.transport import _target

    release, answered = _blocking_dns(monkeypatch)
    t = PyreqwestTransport(LOCAL)  # the system resolver: the worker's own
    slow = [asyncio.create_task(t._client_for(_target(f"https://slow{i}.evil.example/h"))) for i in range(12)]
    await asyncio.sleep(0.1)  # every slow lookup has started
    try:
        client = await asyncio.wait_for(t._client_for(_target("https://fast.other-tenant.example/h")), 30)
        assert client is not None and answered == []  # pinned while every slow lookup still hangs
        for outcome in await asyncio.gather(*slow, return_exceptions=True):  # each bounded, not hung
            assert isinstance(outcome, ConnectionError) and "did not resolve within 1s" in str(outcome)
    finally:
        release.set()
        await asyncio.gather(*slow, return_exceptions=True)
        await t.close()


async def test_a_hanging_name_holds_one_thread_and_slow_names_at_most_half_the_pool():
    import threading

    from hookstream.delivery.transport import ThreadedResolver

    gates = {name: threading.Event() for name in ("slow0", "slow1", "slow2")}
    calls = []

    def lookup(host, port, *args, **kwargs):
        name = host.decode()
        calls.append(name)
        if name in gates:
            gates[name].wait(20)
        return [(2, 1, 6, "", ("192.0.2.1", port))]

    r = ThreadedResolver(threads=4, slow_after=0.01, lookup=lookup)

    async def hangs(name):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(r(name, 443), 0.2)

    try:
        await asyncio.gather(*(hangs("slow0") for _ in range(3)))
        assert calls == ["slow0"]  # three callers, one lookup (one thread)
        await hangs("slow1")
        gates["slow1"].set()  # slow1 answers at last: remembered as slow, no longer running
        for _ in range(100):
            if ("slow1", 443) not in r._running:
                break
            await asyncio.sleep(0.01)
        await hangs("slow2")  # a new name is always tried: now two slow names hold two threads
        with pytest.raises(OSError, match="too many lookups of slow names"):
            await r("slow1", 443)  # a known slow one would take a third: refused at once
        assert await asyncio.wait_for(r("fast.example", 443), 10) == ["192.0.2.1"]  # room for the rest
    finally:
        for gate in gates.values():
            gate.set()
        r.close()


# ---------------------------------------------------------------------------- clients kept, built off the loop
async def test_a_re_pin_to_the_same_address_keeps_the_client_and_a_new_one_is_built_off_the_loop():
    import threading

    from hookstream.delivery.transport import _target

    class Recording(PyreqwestTransport):
        def _build(self, target, pin):
            built.append((pin, threading.get_ident()))
            return _FakeClient()

    built, now, answers = [], [0.0], [["93.184.216.34"]]

    async def dns(host, port):
        return answers[0]

    t = Recording(STRICT, resolver=dns, dns_ttl=60.0, clock=lambda: now[0])
    retired = []
    t._retire = retired.append
    await t._client_for(_target("https://a.example.com/"))  # sweeps at 0 (next at 60)
    now[0] = 30.0
    b = await t._client_for(_target("https://b.example.com/"))
    now[0] = 61.0
    await t._client_for(_target("https://a.example.com/"))  # sweeps (next at 121)
    now[0] = 91.0  # b's pin expired, the sweep not due yet: b is re-resolved to the same address
    assert await t._client_for(_target("https://b.example.com/")) is b
    assert t._pinned[_target("https://b.example.com/")].expires == 151.0 and b not in retired
    answers[0] = ["93.184.216.35"]
    now[0] = 152.0  # (a sweep, then) a new address: a new client, the old one retired
    c = await t._client_for(_target("https://b.example.com/"))
    assert c is not b and b in retired
    assert [pin for pin, _ in built] == ["93.184.216.34"] * 3 + ["93.184.216.35"]  # a, b, a again, b anew
    assert threading.get_ident() not in {ident for _, ident in built}
    await t.close()
