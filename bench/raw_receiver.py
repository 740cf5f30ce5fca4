"""The bench scripts' minimal HTTP/1.1 receiver: a raw asyncio protocol (keep-alive) that parses
just enough (headers, Content-Length, body) and answers each request 200 with an empty body,
counting what it answered. Run in its own process by the script that measures against it.

Imported by the scripts as ``raw_receiver`` (``python bench/x.py`` puts ``bench/`` first on
``sys.path``).
"""

from __future__ import annotations

import asyncio

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


class RawReceiver(asyncio.Protocol):
    """Answers each request 200; ``RawReceiver.count`` is the number answered in this process."""

    count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            total = end + 4 + content_length(bytes(self.buffer[:end]))
            if len(self.buffer) < total:
                return
            del self.buffer[:total]
            RawReceiver.count += 1
            self.transport.write(RESPONSE)


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0
