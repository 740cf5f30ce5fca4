"""The benchmark's webhook receiver: a fast loopback HTTP/1.1 server in its own process.

A raw uvloop ``asyncio.Protocol`` (no framework: on a 2-core machine every microsecond the
receiver spends is taken from the pipeline it measures). For each request it:

* answers ``204 No Content`` at once, keep-alive, and notes the time it did (the "ack" time);
* reads the publish time of the event from the body's ``"timestamp"`` (the envelope's
  ``occurred_at``, microsecond precision, stamped by ``Event.new`` just before publishing), so
  ``ack - timestamp`` is the end-to-end latency publish -> acknowledged POST;
* remembers the ``webhook-id`` (duplicates are counted: delivery is at-least-once);
* every ``--verify-every``-th request (default 100) checks the signature with
  ``delivery.signing.verify`` against the secret registered for that path, and counts failures.

Paths:

* ``POST /e/<name>``: a healthy endpoint, as above.
* ``POST /hang/<name>``: a hung endpoint: the request is counted and never answered; the
  connection stays open until the client gives up (its request timeout) and closes it.
* ``PUT /_bench/secrets``: JSON ``{"/e/<name>": "whsec_..."}``, merged into the known secrets.
* ``GET /_bench/stats``: counts (requests, per path, hung, duplicates, signatures checked and
  failed, and why).
* ``GET /_bench/samples``: ``{"paths": [...], "samples": [[path index, published, acked,
  webhook-id], ...]}`` (unix seconds).
* ``POST /_bench/reset``: forget the counts and samples (between scenarios; secrets stay).

    python bench/receiver.py [--host 127.0.0.1] [--port 0] [--verify-every 100]

prints the port it listens on as its first line, then serves until SIGTERM/SIGINT (or until
its stdin closes, with ``--stdin-lifetime``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import signal
import sys
import time

import orjson

RESPONSE_204 = b"HTTP/1.1 204 No Content\r\n\r\n"
_TS_KEY = b'"timestamp":"'


class State:
    def __init__(self, verify_every: int) -> None:
        self.verify_every = max(1, verify_every)
        self.secrets: dict[str, str] = {}
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.hung = 0
        self.bad_requests = 0
        self.paths: dict[str, int] = {}  # path -> index into self.path_names
        self.path_names: list[str] = []
        self.per_path: list[int] = []
        self.samples: list[tuple[int, float, float, str | None]] = []
        self.seen_ids: set[bytes] = set()
        self.duplicates = 0
        self.sig_checked = 0
        self.sig_failures = 0
        self.sig_unverifiable = 0  # no secret registered for the path
        self.sig_errors: dict[str, int] = {}
        self.started = time.time()

    def path_index(self, path: str) -> int:
        index = self.paths.get(path)
        if index is None:
            index = self.paths[path] = len(self.path_names)
            self.path_names.append(path)
            self.per_path.append(0)
        return index

    def stats(self) -> dict:
        return {
            "requests": self.requests,
            "hung": self.hung,
            "bad_requests": self.bad_requests,
            "duplicates": self.duplicates,
            "unique_ids": len(self.seen_ids),
            "per_path": dict(zip(self.path_names, self.per_path)),
            "signatures": {
                "checked": self.sig_checked,
                "failures": self.sig_failures,
                "unverifiable": self.sig_unverifiable,
                "errors": self.sig_errors,
            },
            "cpu_s": time.process_time(),
        }


def _parse_head(head: bytes) -> tuple[bytes, bytes, dict[str, str]]:
    lines = head.split(b"\r\n")
    method, _, rest = lines[0].partition(b" ")
    target = rest.partition(b" ")[0]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return method, target, headers


def _content_length(head_lower: bytes) -> int:
    at = head_lower.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    end = head_lower.find(b"\r\n", at + 17)
    return int(head_lower[at + 17 : end if end >= 0 else None])


def _header(head_lower: bytes, head: bytes, name: bytes) -> bytes | None:
    at = head_lower.find(b"\r\n" + name + b":")
    if at < 0:
        return None
    start = at + len(name) + 3
    end = head.find(b"\r\n", start)
    return head[start : end if end >= 0 else None].strip()


def _published_at(body: bytes) -> float | None:
    at = body.find(_TS_KEY)
    if at < 0:
        return None
    start = at + len(_TS_KEY)
    end = body.find(b'"', start)
    try:
        return dt.datetime.fromisoformat(body[start:end].decode()).timestamp()
    except ValueError:
        return None


class Receiver(asyncio.Protocol):
    __slots__ = ("state", "transport", "buffer", "hung")

    def __init__(self, state: State) -> None:
        self.state = state
        self.buffer = bytearray()
        self.hung = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.hung:
            return  # a hung endpoint reads nothing more on this connection
        buf = self.buffer
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end])
            head_lower = head.lower()
            try:
                length = _content_length(head_lower)
            except ValueError:
                self.state.bad_requests += 1
                self.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                self.transport.close()
                return
            total = end + 4 + length
            if len(buf) < total:
                return
            body = bytes(buf[end + 4 : total])
            del buf[:total]
            if not self._request(head, head_lower, body):
                return

    def _request(self, head: bytes, head_lower: bytes, body: bytes) -> bool:
        """Handle one complete request; False when the connection must read nothing more."""
        state = self.state
        space = head.find(b" ")
        target = head[space + 1 : head.find(b" ", space + 1)]
        if target.startswith(b"/e/"):
            acked = time.time()
            self.transport.write(RESPONSE_204)
            state.requests += 1
            path = target.decode()
            index = state.path_index(path)
            state.per_path[index] += 1
            published = _published_at(body)
            msg_id = _header(head_lower, head, b"webhook-id")
            if published is not None:
                state.samples.append((index, published, acked, msg_id.decode() if msg_id else None))
            if msg_id is not None:
                if msg_id in state.seen_ids:
                    state.duplicates += 1
                else:
                    state.seen_ids.add(msg_id)
            if state.requests % state.verify_every == 0:
                self._verify(path, head, body)
            return True
        if target.startswith(b"/hang/"):
            state.hung += 1
            state.path_index(target.decode())
            self.hung = True  # never answered; the client's timeout closes the connection
            return False
        if target.startswith(b"/_bench/"):
            self._control(head, target, body)
            return True
        self.transport.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
        return True

    def _verify(self, path: str, head: bytes, body: bytes) -> None:
        from hookstream.delivery.signing import verify

        state = self.state
        secret = state.secrets.get(path)
        if secret is None:
            state.sig_unverifiable += 1
            return
        _, _, headers = _parse_head(head)
        state.sig_checked += 1
        try:
            verify(body, headers, secret)
        except Exception as exc:  # every failure mode counts; the kinds are reported
            state.sig_failures += 1
            name = type(exc).__name__
            state.sig_errors[name] = state.sig_errors.get(name, 0) + 1

    def _control(self, head: bytes, target: bytes, body: bytes) -> None:
        state = self.state
        method = head[: head.find(b" ")]
        if target == b"/_bench/stats":
            payload = orjson.dumps(state.stats())
        elif target == b"/_bench/samples":
            payload = orjson.dumps({"paths": state.path_names, "samples": state.samples})
        elif target == b"/_bench/reset" and method == b"POST":
            state.reset()
            payload = b"{}"
        elif target == b"/_bench/secrets" and method in (b"PUT", b"POST"):
            state.secrets.update(orjson.loads(body))
            payload = orjson.dumps({"secrets": len(state.secrets)})
        else:
            self.transport.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            return
        self.transport.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(payload) + payload
        )


async def serve(host: str, port: int, verify_every: int, stdin_lifetime: bool) -> None:
    loop = asyncio.get_running_loop()
    state = State(verify_every)
    server = await loop.create_server(lambda: Receiver(state), host, port, backlog=2048)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if stdin_lifetime:
        loop.run_in_executor(None, lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)))
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--verify-every", type=int, default=100, help="verify the signature of 1 request in N")
    parser.add_argument("--stdin-lifetime", action="store_true", help="stop when stdin closes")
    args = parser.parse_args()
    import uvloop

    uvloop.run(serve(args.host, args.port, args.verify_every, args.stdin_lifetime))


if __name__ == "__main__":
    main()
