"""The HTTP transport of delivery attempts: a small interface, pyreqwest behind it, SSRF-safe.

``Transport.post(url, body, headers)`` returns an ``HttpResponse`` (status, ``Retry-After``,
a bounded excerpt of the body) or raises one of hookstream's transport errors
(``delivery.errors``: a ``TransportFailure`` is the endpoint's, which
``delivery.outcome.classify_response`` classifies). ``translate_error`` at the bottom of this
module is the one place that knows the HTTP client's exceptions: like httpx's ``_exceptions``,
it raises the mapped error ``from`` the client's. Tests inject a ``MockTransport`` (whose
handler raises hookstream's errors to stand for a failure); the worker uses
``PyreqwestTransport`` (the fastest sound client measured, see docs/benchmarks.md).

Bad answers, and what they become
---------------------------------
- A status line, a status outside 100-999, a header (malformed, conflicting ``Content-Length``,
  over the client's size limit), chunked framing or a body shorter than announced that is not HTTP:
  ``EndpointProtocolError``. The body is read ahead while the answer is received, so a body
  that breaks takes the status with it: the client hands over no status, and the attempt is a
  ``protocol_error`` whatever the status line said (retried; the ``webhook-id`` lets a receiver
  that did take it drop the repeat).
- Compression: none is asked for and none decoded (``Accept-Encoding`` is not sent), so a
  ``Content-Encoding`` body, broken or not, is kept as raw bytes and the status decides.
- A header value that is not text (non-ASCII, invalid UTF-8) is ignored: ``Retry-After`` is
  then absent and the retry schedule's own delay applies.
- TLS: a handshake answered with garbage, or a certificate the system roots do not vouch for
  (self-signed, expired, for another name): ``EndpointTLSError``.
- Closed before or during the status line and headers, refused, reset, DNS: ``EndpointUnreachable``.

Why pyreqwest can be made sound here
------------------------------------
- Redirects: ``follow_redirects(False)``; a 3xx comes back as its status and is a ``GiveUp``.
- Proxies: ``no_proxy()``; a proxy from the environment would connect on our behalf, out of
  reach of the address check.
- Timeouts: a total timeout per request (``HOOKSTREAM_REQUEST_TIMEOUT``, default 15 s), which
  reqwest applies from connecting until the response body is read, so a hung or trickling
  endpoint can never hold a slot for longer.
- SSRF and DNS rebinding: pyreqwest has no resolver hook, so this module resolves the endpoint's
  host itself, checks *every* address it resolves to with ``check_address`` (one refused address
  refuses the host: a rebinding attacker controls which one a client would pick), and builds a
  client for that host with ``ClientBuilder.resolve(host, checked_ip, port)``: the client can
  connect only to the address that was checked, while TLS still verifies the certificate against
  the host name. A client serves one (scheme, host, port) only and is rebuilt, re-resolving and
  re-checking, after ``dns_ttl`` seconds (60 by default); expired pins are dropped and their
  clients closed, so the clients held are those of hosts used lately. An IP literal in the URL
  is checked as it is and needs no resolution. A refusal is cached for the same TTL, so a bad endpoint does not
  hammer the resolver; it surfaces as ``UnsafeURLError`` (a connection failure to the classifier).
- The pin must be keyed on the very name the client looks up, since reqwest resolves any name it
  has no pin for itself, unchecked. ``_target`` reads the URL with pyreqwest's own parser (Rust's
  ``url``: UTS-46 host mapping, so ``bücher`` is ``xn--bcher-kva``), requires that host to be
  the canonical one ``parse_url`` computes (which refuses names IDNA 2003 would read as another
  domain), and pins exactly that string; the resolver is given that ASCII name only (a str
  would make getaddrinfo apply IDNA 2003). A URL on which they disagree is refused, as is a port
  outside ``HOOKSTREAM_ALLOWED_PORTS``, before any lookup.
- DNS is bounded, and one tenant's slow names cannot hold up the others': a lookup gets at most
  ``DNS_TIMEOUT`` (5 s, never more than the request timeout), after which the attempt is a
  ``connection_error`` (retried, not cached as a refusal). Lookups run on a pool of their own
  (``ThreadedResolver``, ``DNS_THREADS`` threads; not the loop's default executor, which other
  work shares): one lookup per name at a time, however many requests wait for it, so a name that
  never answers holds one thread; and names whose last lookup overran the bound (remembered for
  ``SLOW_NAME_TTL``) may hold at most half the threads, so new names always find room.
- Clients: a re-pin that finds the same address keeps the client (and its keep-alive
  connections), extending the pin; a new one is built off the event loop (``asyncio.to_thread``:
  a build loads the root certificates, ~6-15 ms; pyreqwest's clients are free-threading safe and
  do their I/O on their own runtime, so where one is built does not matter).
- Response bodies are streamed and read once, at most ``READ_BYTES`` (64 KiB, also the client's
  read-ahead limit); the first ``EXCERPT_BYTES`` are kept for the attempt log. A receiver that
  sends more only loses its keep-alive connection, never our memory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import datetime as dt
import functools
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from pyreqwest.exceptions import (
    BuilderError,
    ClientClosedError,
    ConnectError,
    NetworkError,
    PyreqwestError,
    RequestTimeoutError,
)

from hookstream.delivery.errors import (
    EndpointProtocolError,
    EndpointTimeout,
    EndpointTLSError,
    EndpointUnreachable,
    TransportFailure,
    TransportUsageError,
)
from hookstream.core.settings import Settings
from hookstream.subscriptions.urls import UnsafeURLError, check_address, check_client_agrees, check_port, parse_url

__all__ = ["EXCERPT_BYTES", "HttpResponse", "MockTransport", "PyreqwestTransport", "ThreadedResolver", "Transport", "translate_error"]

log = logging.getLogger("hookstream.delivery")

EXCERPT_BYTES = 1024
DNS_TIMEOUT = 5.0  # seconds a lookup may take, at most (the request timeout does not cover it)
DNS_THREADS = 16
SLOW_NAME_TTL = 300.0  # seconds a name whose lookup overran DNS_TIMEOUT counts as slow
MAX_SLOW_NAMES = 10_000
READ_BYTES = 64 * 1024  # read at most this much of a response (so a small one's connection is reused)

Resolver = Callable[[str, int], Awaitable[list[str]]]


@dataclasses.dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    retry_after: str | None = None
    excerpt: bytes = b""

    @property
    def headers(self) -> dict[str, str]:
        """What ``classify_response`` reads."""
        return {"retry-after": self.retry_after} if self.retry_after is not None else {}


class Transport(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpResponse: ...

    async def close(self) -> None: ...


class MockTransport:
    """A transport calling ``handler(url, body, headers)`` (sync or async), for unit tests."""

    def __init__(self, handler: Callable[[str, bytes, Mapping[str, str]], HttpResponse | Awaitable[HttpResponse]]) -> None:
        self.handler = handler
        self.requests: list[tuple[str, bytes, dict[str, str]]] = []

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpResponse:
        self.requests.append((url, body, dict(headers)))
        result = self.handler(url, body, headers)
        if asyncio.iscoroutine(result):
            result = await result
        return result

    async def close(self) -> None:
        pass


@dataclasses.dataclass(frozen=True, slots=True)
class _Target:
    scheme: str
    host: str  # exactly as the client looks it up: ASCII, lower case, trailing dot kept, no brackets
    port: int
    # not part of the identity: ipaddress's __eq__ is slow, and the host says it all
    literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None = dataclasses.field(compare=False, hash=False)


def _target(url: str) -> _Target:
    """Where the client will connect for ``url``; ``UnsafeURLError`` when that is not the host checked."""
    target = _parse_target(url)
    if isinstance(target, UnsafeURLError):
        raise target.with_traceback(None)  # cached: a fresh traceback, not one growing on every raise
    return target


@functools.lru_cache(maxsize=4096)
def _parse_target(url: str) -> _Target | UnsafeURLError:
    """Once per URL (cached, refusals too): the host we check and pin is the host pyreqwest connects
    to. ``parse_url`` gives the canonical (UTS-46) host and refuses what IDNA 2003 reads otherwise;
    the client's own parser must land on that same host and port, or the request would go to a
    name nothing pinned and the client would look it up itself, unchecked."""
    try:
        parsed = parse_url(url)
        host, port = check_client_agrees(url, parsed)
    except UnsafeURLError as exc:
        log.warning("refusing to deliver to a URL: %s", exc)  # once per URL; the message never holds its path
        return exc
    return _Target(parsed.scheme, host, port, parsed.literal)


async def system_resolver(host: str, port: int) -> list[str]:
    # bytes: given a str, getaddrinfo applies Python's IDNA 2003 codec (straße -> strasse);
    # _Target.host is already the ASCII name the client uses, and a non-ASCII one is refused
    infos = await asyncio.get_running_loop().getaddrinfo(host.encode("ascii"), port, type=socket.SOCK_STREAM)
    return _addresses(infos)


def _addresses(infos) -> list[str]:
    seen: list[str] = []
    for info in infos:
        if info[4][0] not in seen:
            seen.append(info[4][0])
    return seen


class ThreadedResolver:
    """``getaddrinfo`` on a thread pool of its own, one lookup per (name, port) at a time.

    A caller for a name already being looked up waits for that lookup (even one that outlived
    its first caller's timeout), so a name that never answers holds one thread, never more. A
    name whose lookup ran past ``slow_after`` is remembered as slow for ``SLOW_NAME_TTL``; slow
    names may hold at most half the threads, so a tenant with many dead names cannot fill the
    pool for everybody else (a slow name past that share fails at once, as a connection error)."""

    def __init__(self, threads: int = DNS_THREADS, *, slow_after: float = DNS_TIMEOUT,
                 lookup: Callable[..., list] | None = None) -> None:
        self.threads = threads
        self.slow_after = slow_after
        self._lookup = lookup or socket.getaddrinfo
        self._pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="hookstream-dns")
        self._running: dict[tuple[str, int], asyncio.Future] = {}
        self._slow: dict[tuple[str, int], float] = {}  # -> until (monotonic)

    async def __call__(self, host: str, port: int) -> list[str]:
        key = (host, port)
        future = self._running.get(key)
        if future is None:
            # bytes: given a str, getaddrinfo applies Python's IDNA 2003 codec (straße -> strasse);
            # _Target.host is already the ASCII name the client uses, and a non-ASCII one is refused
            name = host.encode("ascii")
            if self._is_slow(key) and sum(map(self._is_slow, self._running)) >= self.threads // 2:
                raise OSError(f"too many lookups of slow names under way ({self.threads // 2}); try later")
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self._pool, functools.partial(self._lookup, name, port, type=socket.SOCK_STREAM))
            self._running[key] = future
            timer = loop.call_later(self.slow_after, self._mark_slow, key)
            future.add_done_callback(functools.partial(self._done, key, timer))
        return _addresses(await asyncio.shield(future))

    def _is_slow(self, key: tuple[str, int]) -> bool:
        until = self._slow.get(key)
        return until is not None and until > time.monotonic()

    def _mark_slow(self, key: tuple[str, int]) -> None:
        self._slow.pop(key, None)
        if len(self._slow) >= MAX_SLOW_NAMES:
            del self._slow[next(iter(self._slow))]  # the oldest
        self._slow[key] = time.monotonic() + SLOW_NAME_TTL

    def _done(self, key: tuple[str, int], timer: asyncio.TimerHandle, future: asyncio.Future) -> None:
        timer.cancel()
        if self._running.get(key) is future:
            del self._running[key]
        if not future.cancelled():
            future.exception()  # retrieved: nobody may be waiting any more (they timed out)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclasses.dataclass
class _Pinned:
    client: object | None  # pyreqwest Client, None when refused
    refusal: UnsafeURLError | None
    expires: float
    address: str | None = None


class PyreqwestTransport:
    """pyreqwest clients, one per endpoint (scheme, host, port), each pinned to a checked address."""

    def __init__(
        self,
        settings: Settings,
        *,
        max_connections_per_host: int = 64,
        resolver: Resolver | None = None,
        dns_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.timeout = settings.request_timeout_seconds
        self.max_connections = max_connections_per_host
        self._own_resolver = ThreadedResolver() if resolver is None else None
        self.resolver = resolver or self._own_resolver
        self.dns_timeout = min(self.timeout, DNS_TIMEOUT)
        self.dns_ttl = dns_ttl
        self.clock = clock
        self._pinned: dict[_Target, _Pinned] = {}
        self._resolving: dict[_Target, asyncio.Future] = {}
        self._retired: set = set()
        self._next_sweep = 0.0

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpResponse:
        """POST and read the answer. Raises ``UnsafeURLError`` (refused address), a
        ``TransportFailure`` (the endpoint's failure, whatever the client raised) or
        ``TransportUsageError`` (ours); never the client's own exceptions."""
        target = _target(url)
        try:
            client = await self._client_for(target)
        except ConnectionError as exc:  # the name does not resolve now
            raise EndpointUnreachable(_one_line(str(exc), url)) from exc
        request = client.post(url).headers(headers).body_bytes(body).streamed_read_buffer_limit(READ_BYTES).build_streamed()
        try:
            # entering reads the status line, the headers and (read-ahead) up to READ_BYTES of
            # the body: a broken body fails here, before the status reaches us (README: delivery)
            async with request as response:
                # one read: awaiting pyreqwest costs a thread hop each time, so no loop over chunks
                excerpt = await response.body_reader.read(READ_BYTES)
                return HttpResponse(response.status, _retry_after(response), bytes(excerpt or b"")[:EXCERPT_BYTES])
        except PyreqwestError as exc:
            raise translate_error(exc, url) from exc

    async def _client_for(self, target: _Target):
        now = self.clock()
        if now >= self._next_sweep:
            self._sweep(now)
        pinned = self._pinned.get(target)
        if pinned is None or pinned.expires <= now:
            pinned = await self._pin(target)
        if pinned.refusal is not None:
            raise pinned.refusal
        return pinned.client

    async def _pin(self, target: _Target) -> _Pinned:
        """Resolve, check and build once per target at a time (concurrent callers share it)."""
        waiting = self._resolving.get(target)
        if waiting is not None:
            return await asyncio.shield(waiting)
        future = asyncio.get_running_loop().create_future()
        self._resolving[target] = future
        try:
            pinned = await self._resolve_and_check(target)
            old = self._pinned.get(target)
            self._pinned[target] = pinned
            if old is not None and old.client is not None and old.client is not pinned.client:
                self._retire(old.client)
            future.set_result(pinned)
            return pinned
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        finally:
            del self._resolving[target]

    async def _resolve_and_check(self, target: _Target) -> _Pinned:
        expires = self.clock() + self.dns_ttl
        try:
            check_port(target.port, self.settings)
            if target.literal is not None:
                check_address(target.literal, self.settings)
                return await self._pinned_to(target, None, str(target.literal), expires)
            try:
                async with asyncio.timeout(self.dns_timeout):  # no task per lookup, as wait_for makes
                    addresses = await self.resolver(target.host, target.port)
            except TimeoutError:  # (before OSError, its base class) retryable, not cached
                raise ConnectionError(f"host {target.host!r} did not resolve within {self.dns_timeout:g}s") from None
            except (OSError, UnicodeError) as exc:
                # not an SSRF refusal: the name does not resolve now (retryable, not cached)
                raise ConnectionError(f"host {target.host!r} does not resolve: {exc}") from None
            if not addresses:
                raise ConnectionError(f"host {target.host!r} resolves to no address")
            for address in addresses:
                check_address(address, self.settings)
            chosen = addresses[0]
            return await self._pinned_to(target, chosen, chosen, expires)
        except UnsafeURLError as exc:
            log.warning("refusing to deliver to %s: %s", target.host, exc)
            return _Pinned(None, exc, expires)

    async def _pinned_to(self, target: _Target, pin: str | None, address: str, expires: float) -> _Pinned:
        """The pin for ``address``: the current client when it already connects there (keeping its
        pooled connections), else a new one, built off the event loop."""
        old = self._pinned.get(target)
        if old is not None and old.client is not None and old.address == address:
            return _Pinned(old.client, None, expires, address)
        return _Pinned(await self._new_client(target, pin), None, expires, address)

    async def _new_client(self, target: _Target, pin: str | None):
        return await asyncio.to_thread(self._build, target, pin)

    def _build(self, target: _Target, pin: str | None):
        from pyreqwest.client import ClientBuilder

        builder = (
            ClientBuilder()
            .follow_redirects(False)
            .no_proxy()
            .https_only(not self.settings.allow_http)
            .timeout(dt.timedelta(seconds=self.timeout))
            .connect_timeout(dt.timedelta(seconds=min(self.timeout, 10.0)))
            # no cap on the client's own pool: endpoints sharing a host share its client, and a
            # hung endpoint must not take the connections of its neighbours. The worker's
            # per-endpoint gates and in-flight bound are the limits.
            .max_connections(None)
            .pool_max_idle_per_host(self.max_connections)
            # no Accept-Encoding, no decoding: we keep a 1 KiB excerpt, so decompressing bought
            # nothing but CPU, bombs and decoder errors hiding the status (README: delivery)
            .gzip(False)
            .brotli(False)
            .zstd(False)
            .deflate(False)
        )
        if pin is not None:
            builder = builder.resolve(target.host, pin, target.port)
        return builder.build()

    def _sweep(self, now: float) -> None:
        """Drop the expired pins, once per ``dns_ttl``, so the map holds the hosts used lately,
        not every host ever delivered to. An expired pin is never used again (the next request
        for its host pins afresh and retires it), so this forgets nothing: its client is retired
        (closed after the requests it may still carry) as a re-pin would have."""
        self._next_sweep = now + self.dns_ttl
        expired = [t for t, p in self._pinned.items() if p.expires <= now and t not in self._resolving]
        for target in expired:
            client = self._pinned.pop(target).client
            if client is not None:
                self._retire(client)

    def _retire(self, client) -> None:
        """Close a replaced client once requests it may still carry are past their timeout."""
        loop = asyncio.get_running_loop()

        def close_later() -> None:
            task = loop.create_task(client.close())
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)

        loop.call_later(self.timeout + 2.0, close_later)

    async def close(self) -> None:
        for pinned in list(self._pinned.values()):
            if pinned.client is not None:
                await pinned.client.close()
        self._pinned.clear()
        if self._own_resolver is not None:
            self._own_resolver.close()


# --------------------------------------------------------------------------- error mapping
# The one place that knows pyreqwest's exceptions (pyreqwest/exceptions/__init__.py):
#   PyreqwestError > DetailedPyreqwestError > RequestError > TransportError > RequestTimeoutError
#   (Connect/Read/Write/Pool timeouts) | NetworkError (ConnectError, ReadError, WriteError);
#   RequestError > DecodeError (BodyDecodeError) | StatusError | RedirectError | ClientClosedError
#   | RequestPanicError; DetailedPyreqwestError > BuilderError.
# reqwest reports a TLS failure as a ConnectError whose innermost cause is rustls' message.
_TLS_WORDS = ("certificate", "tls", "ssl", "handshake", "corrupt message", "fatal alert", "peer is incompatible", "peer misbehaved")


def translate_error(exc: PyreqwestError, url: str) -> TransportFailure | TransportUsageError:
    """pyreqwest's exception -> hookstream's, with a one-line message naming the innermost cause.

    A panic inside the client counts as the endpoint's protocol error: only the bytes it sent
    differ between this attempt and the thousands that worked, so it is not our bug to report
    (as ``internal_error``) but the endpoint's answer to retry and, at last, dead-letter.
    """
    message = _one_line(_cause(exc), url)
    if isinstance(exc, (BuilderError, ClientClosedError)):
        return TransportUsageError(message)
    if isinstance(exc, RequestTimeoutError):
        return EndpointTimeout(message)
    if isinstance(exc, ConnectError) and url[:6].lower() == "https:" and any(w in message.lower() for w in _TLS_WORDS):
        return EndpointTLSError(message)
    if isinstance(exc, NetworkError):
        return EndpointUnreachable(message)
    # DecodeError (a status line, header or framing that is not HTTP, a truncated body), and the
    # ones that cannot happen as configured (StatusError, RedirectError) or should not (a panic)
    return EndpointProtocolError(message)


def _cause(exc: PyreqwestError) -> str:
    """``"error decoding response: invalid HTTP status-code parsed"``: the summary and the root cause."""
    causes = (getattr(exc, "details", None) or {}).get("causes") or []
    last = causes[-1].get("message") if causes and isinstance(causes[-1], dict) else None
    summary = getattr(exc, "message", None) or type(exc).__name__
    return f"{summary}: {last}" if last and last != summary else summary


def _one_line(text: str, url: str) -> str:
    """No URL (it may carry a token), no line breaks, at most 300 characters."""
    text = " ".join(text.replace(url, "<url>").split())
    return text if len(text) <= 300 else text[:299] + "…"


def _retry_after(response) -> str | None:
    """The ``Retry-After`` value, or None when absent or not text (non-ASCII, invalid UTF-8):
    a header we cannot read is a header we ignore, never a failure of the attempt."""
    try:
        return response.get_header("retry-after")
    except (ValueError, PyreqwestError):
        return None
