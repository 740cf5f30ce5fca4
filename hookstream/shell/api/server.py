"""The HTTP server's own guards, below the app: uvicorn's httptools protocol with two bounds it lacks.

uvicorn closes an idle keep-alive connection (``timeout_keep_alive``) and refuses requests over
``limit_concurrency`` with 503, but on httptools it has no limit on how long a client may take to
send a request's line and headers, nor on how large they may be (``h11_max_incomplete_event_size``
is h11's alone): a client that connects and sends nothing, or trickles a header a byte at a time,
holds its connection (and a slot of ``limit_concurrency``) for ever; a huge header is buffered
whole. ``protocol(header_timeout, max_header_bytes)`` makes the protocol class ``hookstream api``
serves with:

- a new connection, and each request once its first byte arrives, has ``header_timeout`` seconds
  to finish its headers; else 408 and the connection is closed;
- once a request's line and headers pass ``max_header_bytes``, 431 and the connection is closed
  (at once while they are still arriving; once parsed, when they came whole in one read).

Past ``limit_concurrency`` connections or requests, uvicorn's 503 comes as a problem document
(``over_capacity``, ``Retry-After: 1``) like every other error. The body's bounds are the app's
(``problems.BodyGuard``: size, pauses, total time).
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hookstream.shell.api.problems import MEDIA_TYPE, Problem

log = logging.getLogger("hookstream.api")


def protocol(header_timeout: float, max_header_bytes: int) -> type[HttpToolsProtocol]:
    """The protocol class, with these bounds (uvicorn's ``Config(http=...)``)."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,),
                {"header_timeout": header_timeout, "max_header_bytes": max_header_bytes})


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout = 10.0
    max_header_bytes = 65536

    _header_timer: asyncio.TimerHandle | None = None
    _in_headers = False  # between a request's first byte (or the connection) and its headers' end
    _header_bytes = 0  # bytes received while the headers were unfinished
    _header_size = 0  # the request line's and headers' size, as parsed

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_headers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # parses: may begin a request (on_message_begin) and end its headers
        if self._in_headers and not self.transport.is_closing():
            self._header_bytes += len(data)  # all of it was headers: they are still not complete
            if self._header_bytes > self.max_header_bytes:
                self._refuse(431, "Request Header Fields Too Large", f"request line and headers over {self.max_header_bytes} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_size = 0
        if not self._in_headers:
            self._start_headers()

    def on_url(self, url: bytes) -> None:
        self._header_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_size += len(name) + len(value)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._stop_headers()
        if self._header_size > self.max_header_bytes:  # headers that came whole in one read
            self._answer_instead(_refusal(431, "headers_too_large", f"request line and headers over {self.max_header_bytes} bytes"))
        elif self.limit_concurrency is not None and max(len(self.connections), len(self.tasks)) >= self.limit_concurrency:
            # what uvicorn does here, as a problem document rather than its text/plain 503
            self._answer_instead(_refusal(503, "over_capacity", "the server holds as many connections and requests as it may; retry shortly",
                                          {"Retry-After": "1"}))
        else:
            super().on_headers_complete()

    def _answer_instead(self, app) -> None:
        """Let uvicorn run this request with ``app`` (which answers it) instead of ours."""
        ours, limit = self.app, self.limit_concurrency
        self.app, self.limit_concurrency = app, None
        try:
            super().on_headers_complete()
        finally:
            self.app, self.limit_concurrency = ours, limit

    def _start_headers(self) -> None:
        self._in_headers = True
        self._header_bytes = 0
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _stop_headers(self) -> None:
        self._in_headers = False
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._in_headers:
            self._refuse(408, "Request Timeout", f"no complete request headers within {self.header_timeout:g}s")

    def _refuse(self, status: int, reason: str, why: str) -> None:
        """Answer ``status`` and close, mid-request (no app runs: there is no complete request)."""
        self._stop_headers()
        if self.transport.is_closing():
            return
        log.info("closed a connection from %s: %s", self.client[0] if self.client else "?", why)
        body = orjson.dumps(Problem(status, "request_timeout" if status == 408 else "headers_too_large", why).document())
        self.transport.write(b"".join([
            f"HTTP/1.1 {status} {reason}\r\n".encode(), f"content-type: {MEDIA_TYPE}\r\n".encode(),
            f"content-length: {len(body)}\r\n".encode(), b"connection: close\r\n\r\n", body]))
        self.transport.close()


def _refusal(status: int, code: str, detail: str, headers: dict[str, str] | None = None):
    """An ASGI app answering every request with this problem, and closing the connection."""
    response = Problem(status, code, detail, headers={**(headers or {}), "Connection": "close"}).response()

    async def app(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})

    return app
