"""A webhook endpoint that answers badly on purpose: raw bytes on a TCP socket, no HTTP library.

``HostileEndpoint`` serves on 127.0.0.1 in its own thread (usable from async unit tests and
from integration tests alike). Plain-HTTP misbehaviours are paths of one port (``url(mode)``);
the TLS ones need a port each (``tls_url(mode)``): the failure happens before any HTTP.

Every mode reads the whole request first (headers, then ``Content-Length`` bytes), so what
follows is the answer's fault only, then writes its bytes and closes. ``hits[mode]`` counts
requests per mode (written by the endpoint's thread only). The self-signed TLS mode needs the
``openssl`` CLI; without it ``tls_ports`` has no ``tls_self_signed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
import ssl
import subprocess
import tempfile
import threading
from pathlib import Path

CONTROL = "ok"

# mode -> the exact bytes answered, then the connection is closed. ``None``: close at once.
ANSWERS: dict[str, bytes | None] = {
    CONTROL: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok",
    "status_line_garbage": b"HTTX/1.1 OK 200\r\nContent-Length: 0\r\n\r\n",
    "status_line_binary": b"\x00\xff\xfe garbage \x80\r\n\r\n",
    "status_0": b"HTTP/1.1 0 Zero\r\nContent-Length: 0\r\n\r\n",
    "status_99": b"HTTP/1.1 99 Low\r\nContent-Length: 0\r\n\r\n",
    "status_600": b"HTTP/1.1 600 High\r\nContent-Length: 0\r\n\r\n",
    "status_999": b"HTTP/1.1 999 Higher\r\nContent-Length: 0\r\n\r\n",
    "status_1000": b"HTTP/1.1 1000 Way\r\nContent-Length: 0\r\n\r\n",
    "status_word": b"HTTP/1.1 OK\r\nContent-Length: 0\r\n\r\n",
    "truncated_body": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part",
    "truncated_body_500": b"HTTP/1.1 500 Oops\r\nContent-Length: 100\r\n\r\nonly part",
    "gzip_broken": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 14\r\n\r\n\x1f\x8b\x08\x00garbage!!!",
    "br_broken": b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 13\r\n\r\n\xff\xff\xffnot brotli",
    "zstd_broken": b"HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\nContent-Length: 14\r\n\r\n\x28\xb5\x2f\xfdnot zstd!!",
    "deflate_broken": b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: 10\r\n\r\n\xff\xffnot zlib",
    "gzip_broken_503": b"HTTP/1.1 503 Busy\r\nContent-Encoding: gzip\r\nRetry-After: 7\r\nContent-Length: 10\r\n\r\n\x1f\x8bnonsense",
    "chunked_bad_size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunked_cut": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\nshort",
    "content_length_conflict": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\nok",
    "content_length_garbage": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok",
    "header_huge": b"HTTP/1.1 200 OK\r\nX-Huge: " + b"a" * (1024 * 1024) + b"\r\nContent-Length: 2\r\n\r\nok",
    "header_no_colon": b"HTTP/1.1 200 OK\r\nthis is not a header\r\nContent-Length: 2\r\n\r\nok",
    "retry_after_latin1": b"HTTP/1.1 503 Busy\r\nRetry-After: 12\xe9\xff\r\nContent-Length: 0\r\n\r\n",
    "retry_after_utf8_digits": "HTTP/1.1 429 Slow\r\nRetry-After: \u0663\u0660\r\nContent-Length: 0\r\n\r\n".encode(),
    "retry_after_garbage": b"HTTP/1.1 429 Slow\r\nRetry-After: Mon, 99 Foo 99999999 99:99:99 GMT\r\nContent-Length: 0\r\n\r\n",
    "retry_after_huge": b"HTTP/1.1 503 Busy\r\nRetry-After: " + b"9" * 400 + b"\r\nContent-Length: 0\r\n\r\n",
    "header_invalid_utf8": b"HTTP/1.1 200 OK\r\nX-Name: \xc3\x28\xa0\xa1\r\nContent-Length: 2\r\n\r\nok",
    "body_nul": b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nok\x00\x00\xff!",
    "closed_before_status": None,
    "closed_after_status": b"HTTP/1.1 200 OK\r\n",
    "closed_mid_headers": b"HTTP/1.1 200 OK\r\nContent-Len",
}

TLS_MODES = ("tls_garbage", "tls_self_signed")


def _closing(answer: bytes | None) -> bytes | None:
    """``Connection: close`` after a parseable status line: the endpoint closes after every answer,
    and a client must not reuse that connection for the next mode (a reset would hide the mode)."""
    if answer is None or not answer.startswith(b"HTTP/1.1 ") or b"\r\n\r\n" not in answer:
        return answer
    line, _, rest = answer.partition(b"\r\n")
    return line + b"\r\nConnection: close\r\n" + rest


ANSWERS = {mode: _closing(answer) for mode, answer in ANSWERS.items()}


class HostileEndpoint:
    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.heads: dict[str, bytes] = {}  # mode -> the head of the last request to it
        self.port = 0
        self.tls_ports: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True, name="hostile-endpoint")
        self._tmp = tempfile.TemporaryDirectory(prefix="hostile-")

    # ------------------------------------------------------------------ for tests
    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mode}"

    def tls_url(self, mode: str) -> str:
        return f"https://127.0.0.1:{self.tls_ports[mode]}/{mode}"

    def start(self) -> HostileEndpoint:
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError("the hostile endpoint did not start within 20 s")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(10)
        self._tmp.cleanup()

    def __enter__(self) -> HostileEndpoint:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ the server
    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        servers = [await asyncio.start_server(self._http, "127.0.0.1", 0)]
        self.port = servers[0].sockets[0].getsockname()[1]
        servers.append(await asyncio.start_server(self._tls_garbage, "127.0.0.1", 0))
        self.tls_ports["tls_garbage"] = servers[-1].sockets[0].getsockname()[1]
        context = self_signed_context(Path(self._tmp.name))
        if context is not None:
            servers.append(await asyncio.start_server(self._http, "127.0.0.1", 0, ssl=context))
            self.tls_ports["tls_self_signed"] = servers[-1].sockets[0].getsockname()[1]
        self._ready.set()
        await self._stopping.wait()
        for server in servers:
            server.close()
        for server in servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            mode, head = await _read_request(reader)
            self.heads[mode] = head
            self.hits[mode] = self.hits.get(mode, 0) + 1
            answer = ANSWERS.get(mode, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            if answer is not None:
                writer.write(answer)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ValueError, ssl.SSLError):
            pass  # the client gave up (a TLS refusal, a limit): nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)

    async def _tls_garbage(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer the ClientHello with bytes that are no TLS record."""
        try:
            await asyncio.wait_for(reader.read(4096), 5)
            self.hits["tls_garbage"] = self.hits.get("tls_garbage", 0) + 1
            writer.write(b"HTTP/1.1 200 OK\r\n\r\nthis is not TLS at all\x00\xff" * 4)
            await writer.drain()
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, bytes]:
    """Read one request whole: its path (without the slash) names the mode; and its head."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await asyncio.wait_for(reader.readexactly(length), 10)
    return lines[0].split(" ")[1].lstrip("/").split("?")[0], head


def self_signed_context(directory: Path) -> ssl.SSLContext | None:
    """A server context with a fresh self-signed certificate for 127.0.0.1 (``openssl`` CLI);
    None when ``openssl`` is missing. No client trusts it: that is the point."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


PROTOCOL, CONNECTION, TLS = "protocol_error", "connection_error", "tls_error"

# What a sound sender makes of each mode: ("success" or the retry reason, the HTTP status the
# attempt keeps, the Retry-After it honours in seconds).
EXPECTED: dict[str, tuple[str, int | None, float | None]] = {
    CONTROL: ("success", 200, None),
    "status_line_garbage": (PROTOCOL, None, None),
    "status_line_binary": (PROTOCOL, None, None),
    "status_0": (PROTOCOL, None, None),
    "status_99": (PROTOCOL, None, None),
    "status_600": (PROTOCOL, 600, None),  # hyper passes 600-999 on; no HTTP status all the same
    "status_999": (PROTOCOL, 999, None),
    "status_1000": (PROTOCOL, None, None),
    "status_word": (PROTOCOL, None, None),
    "truncated_body": (PROTOCOL, None, None),  # the body breaks while read ahead: no status handed over
    "truncated_body_500": (PROTOCOL, None, None),
    "chunked_bad_size": (PROTOCOL, None, None),
    "chunked_cut": (PROTOCOL, None, None),
    "content_length_conflict": (PROTOCOL, None, None),
    "content_length_garbage": (PROTOCOL, None, None),
    "header_huge": (PROTOCOL, None, None),
    "header_no_colon": (PROTOCOL, None, None),
    # no decoding asked for or done: a broken compressed body is raw bytes, the status decides
    "gzip_broken": ("success", 200, None),
    "br_broken": ("success", 200, None),
    "zstd_broken": ("success", 200, None),
    "deflate_broken": ("success", 200, None),
    "gzip_broken_503": ("server_error", 503, 7.0),
    # a Retry-After that is not text, or not a delay, is ignored; the status still decides
    "retry_after_latin1": ("server_error", 503, None),
    "retry_after_utf8_digits": ("rate_limited", 429, None),
    "retry_after_garbage": ("rate_limited", 429, None),
    "retry_after_huge": ("server_error", 503, math.inf),  # capped by the schedule
    "header_invalid_utf8": ("success", 200, None),
    "body_nul": ("success", 200, None),  # kept in the excerpt; the attempt log replaces the NULs
    "closed_before_status": (CONNECTION, None, None),
    "closed_after_status": (CONNECTION, None, None),
    "closed_mid_headers": (CONNECTION, None, None),
    "tls_garbage": (TLS, None, None),
    "tls_self_signed": (TLS, None, None),
}
