"""A hostile client against a real ``hookstream api`` process (the ``live`` fixture of
test_api_live.py: uvicorn on a free port, the real broker): malformed HTTP over raw sockets,
clients that hang up mid-body, forged iterators, duplicate credentials. Nothing may be a 5xx and
the process must stay up and keep answering."""

from __future__ import annotations

import base64
import json
import re
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.test_api_live import live, serve_api  # noqa: F401 - the module-scoped fixture

pytestmark = pytest.mark.kafka

READ_TIMEOUT = 10.0  # seconds a raw socket waits for an answer


def _exchange(url: str, data: bytes, *, hang_up: bool = False, half_close: bool = True) -> bytes:
    """Send ``data`` on a fresh connection; what came back before the server closed or
    ``READ_TIMEOUT`` (``hang_up``: close at once without reading, as a vanishing client does;
    ``half_close``: shut our side after sending, which uvicorn takes as the end of a pipeline)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=READ_TIMEOUT) as sock:
        sock.sendall(data)
        if hang_up:
            return b""
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        out = b""
        for _ in range(1000):  # bounded: at most 1000 reads
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
        return out


def _statuses(answer: bytes) -> list[int]:
    """Status of every response in ``answer`` (a pipelined response starts right after the last body)."""
    return [int(status) for status in re.findall(rb"HTTP/1\.[01] (\d{3}) ", answer)]


def _malformed(host: str, key: str) -> list[tuple[str, bytes]]:
    auth = f"Authorization: Bearer {key}\r\n".encode()
    json_post = b"POST /v1/events HTTP/1.1\r\nHost: " + host.encode() + b"\r\n" + auth + b"Content-Type: application/json\r\n"
    return [
        ("bad chunk size", json_post + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"),
        ("chunked and Content-Length", json_post + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
        ("Content-Length past 64 bits", json_post + b"Content-Length: 99999999999999999999999999\r\n\r\n{}"),
        ("negative Content-Length", json_post + b"Content-Length: -5\r\n\r\n{}"),
        ("NUL in the path", b"GET /v1/endpoints/a\x00b HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"),
        ("NUL and bad escapes in the query", b"GET /v1/messages?endpoint_id=%00&event_type=%ZZ%ff HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"),
        ("non-ASCII credentials", b"GET /v1/endpoints HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n\r\n"),
        ("non-ASCII tenant header", b"GET /v1/endpoints HTTP/1.1\r\nHost: x\r\n" + auth + b"Hookstream-Tenant: \xe9\xff\r\n\r\n"),
        ("non-ASCII Idempotency-Key", json_post + b"Idempotency-Key: \xe9\xff\r\nContent-Length: 2\r\n\r\n{}"),
        ("UTF-16 body", b"POST /v1/events HTTP/1.1\r\nHost: x\r\n" + auth
         + b"Content-Type: application/json; charset=utf-16\r\nContent-Length: 4\r\n\r\n\xff\xfe{\x00"),
        ("HTTP/1.0", b"GET /v1/endpoints HTTP/1.0\r\n" + auth + b"\r\n"),
        ("a 100 KB header", b"GET /v1/endpoints HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"),
    ]


def test_malformed_http_is_never_a_5xx_and_the_process_stays_up(live):  # noqa: F811
    host = urlsplit(live.url).netloc
    for name, request in _malformed(host, live.acme):
        answer = _exchange(live.url, request)
        assert all(s < 500 for s in _statuses(answer)), (name, answer[:300])
        assert live.process.poll() is None, name
    answer = _exchange(live.url, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/endpoints HTTP/1.1\r\nHost: x\r\n"
                       + f"Authorization: Bearer {live.acme}\r\n".encode() + b"\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", half_close=False)
    assert _statuses(answer) == [200, 200, 404], answer[:500]  # pipelined: three answers, in order


def test_clients_hanging_up_mid_body_leave_the_process_serving(live):  # noqa: F811
    for path in ("/v1/events", "/v1/endpoints", "/v1/events/batch"):
        for _ in range(20):
            _exchange(live.url, f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {live.acme}\r\n".encode()
                      + b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"type\":", hang_up=True)
    assert live.process.poll() is None
    with httpx.Client(base_url=live.url, timeout=30.0) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/endpoints", headers={"Authorization": f"Bearer {live.acme}"}).status_code == 200


def test_forged_iterators_and_duplicate_credentials_are_4xx(live):  # noqa: F811
    forged = base64.urlsafe_b64encode(json.dumps(["messages", 2**70]).encode()).decode().rstrip("=")
    with httpx.Client(base_url=live.url, timeout=30.0) as client:
        response = client.get("/v1/messages", params={"iterator": forged}, headers={"Authorization": f"Bearer {live.acme}"})
        assert response.status_code == 422 and response.json()["field"] == "iterator", response.text
        response = client.get("/v1/endpoints", headers=[("Authorization", f"Bearer {live.admin}"), ("Hookstream-Tenant", "acme"),
                                                        ("Hookstream-Tenant", "globex")])
        assert response.status_code == 400 and response.json()["code"] == "duplicate_header", response.text



# ----------------------------------------------------------------------------- the server's own bounds
# A server of its own with tight bounds (the defaults: 10 s, 60 s, 1000, 64 KiB), so each test
# takes seconds; what it shows holds for any value.
HEADER_TIMEOUT, BODY_TIMEOUT, MAX_HEADER_BYTES, LIMIT_CONCURRENCY = 1.0, 2.0, 8192, 100


@pytest.fixture(scope="module")
def guarded(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory):
    with serve_api(kafka_bootstrap, tmp_path_factory.mktemp("api-guarded"), HOOKSTREAM_API_HEADER_TIMEOUT=f"{HEADER_TIMEOUT}s",
                   HOOKSTREAM_API_BODY_TIMEOUT=f"{BODY_TIMEOUT}s", HOOKSTREAM_API_MAX_HEADER_BYTES=str(MAX_HEADER_BYTES),
                   HOOKSTREAM_API_LIMIT_CONCURRENCY=str(LIMIT_CONCURRENCY)) as api:
        yield api


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=READ_TIMEOUT)


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded: READ_TIMEOUT per read)."""
    out = b""
    for _ in range(1000):
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            return out
        out += chunk
    raise AssertionError(f"the server did not close the connection: {out[:200]!r}")


def _answers(api) -> None:
    """The server is up and answers another client, with and without a key."""
    assert api.process.poll() is None
    with httpx.Client(base_url=api.url, timeout=30.0) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/endpoints", headers=api.auth(api.acme)).status_code == 200


def test_idle_connections_are_closed_after_the_header_timeout_while_others_are_answered(guarded):
    idle = [_connect(guarded.url) for _ in range(50)]  # connect, then say nothing
    try:
        _answers(guarded)  # while they are open
        for sock in idle:
            answer = _read_until_closed(sock)
            assert _statuses(answer) == [408] and b"request_timeout" in answer, answer[:300]
    finally:
        for sock in idle:
            sock.close()
    _answers(guarded)


def test_past_the_concurrency_limit_requests_get_a_503_problem_until_connections_close(guarded):
    idle = [_connect(guarded.url) for _ in range(LIMIT_CONCURRENCY)]
    try:
        answer = _exchange(guarded.url, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", half_close=False)
        assert _statuses(answer) == [503], answer[:300]
        assert b"application/problem+json" in answer and b"over_capacity" in answer and b"retry-after: 1" in answer.lower()
        for sock in idle:  # the idle ones are closed by the header timeout: nothing stays held
            _read_until_closed(sock)
    finally:
        for sock in idle:
            sock.close()
    _answers(guarded)


def _trickle(sock: socket.socket, data: bytes, every: float, within: float) -> tuple[bytes, bool]:
    """Send ``data`` every ``every`` seconds until the server closes the connection or ``within``
    seconds pass: (what it answered, whether it closed)."""
    sock.settimeout(every)
    answer = b""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            sock.sendall(data)
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return answer, True
        if not chunk:
            return answer, True
        answer += chunk
    return answer, False


def test_headers_sent_a_line_at_a_time_are_408_after_the_header_timeout(guarded):
    with _connect(guarded.url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        answer, closed = _trickle(sock, b"X-Slow: y\r\n", HEADER_TIMEOUT / 5, 10 * HEADER_TIMEOUT)  # never the blank line
    assert closed, "the server kept a connection whose headers never ended"
    assert _statuses(answer) in ([408], []), answer[:300]  # [] when a reset beat the answer to us
    _answers(guarded)


def test_a_huge_header_is_431_and_the_connection_closed(guarded):
    with _connect(guarded.url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            for _ in range(64):  # 4 MiB, unless the server hangs up first
                sock.sendall(b"a" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            answer = _read_until_closed(sock)
        except ConnectionResetError:
            answer = b""
    assert _statuses(answer) in ([431], []), answer[:300]  # [] when the reset beat the answer to us
    # whole, in one read: parsed, then refused the same way (and the app never sees it)
    answer = _exchange(guarded.url, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (2 * MAX_HEADER_BYTES) + b"\r\n\r\n",
                       half_close=False)
    assert _statuses(answer) == [431] and b"headers_too_large" in answer, answer[:300]
    _answers(guarded)


def test_a_body_sent_a_byte_at_a_time_is_408_after_the_body_timeout_while_others_are_answered(guarded):
    with _connect(guarded.url) as sock:
        sock.sendall(f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {guarded.acme}\r\n".encode()
                     + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        # a byte at a time, never pausing long: only the bound on the whole body stops it
        answer, closed = _trickle(sock, b" ", BODY_TIMEOUT / 8, 10 * BODY_TIMEOUT)
        _answers(guarded)  # answered beside it
    assert closed, "the server kept a connection whose body never ended"
    assert _statuses(answer) == [408] and b"did not all arrive" in answer, answer[:300]
