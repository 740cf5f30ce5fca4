"""streams/lean.py: the trimmed Faust pieces keep Faust's contract (fakes for the pure logic;
tests/integration/test_streams_worker.py runs them against the real broker, rebalances included)."""

from __future__ import annotations

import asyncio
import inspect
from collections import defaultdict
from types import SimpleNamespace

import faust
from faust.transport.drivers import aiokafka as driver

from hookstream.streams import lean


def test_the_overridden_fetch_loop_still_exists_upstream_with_the_same_signature():
    # lean.py overrides a method Faust does not document: a Faust upgrade that moves it must fail here
    upstream = driver.Consumer._drain_messages
    assert list(inspect.signature(upstream).parameters) == ["self", "fetcher"]
    assert lean.LeanConsumer._drain_messages is not upstream
    assert lean.LeanTransport.Consumer is lean.LeanConsumer
    assert faust.__version__ == "0.15.3"


def test_the_quiet_monitor_still_stamps_stream_inbound_time():
    monitor = lean.QuietMonitor()
    monitor.on_stream_event_in("tp", 5, stream=None, event=None)
    assert "tp" in monitor.stream_inbound_time  # the aiokafka driver's stall check reads it
    monitor.on_message_in("tp", 5, None)
    assert monitor.messages_received_total == 0  # nothing counted per message


def test_raw_bytes_hands_over_the_record_bytes():
    made = []
    app = SimpleNamespace(create_event=lambda k, v, h, m: made.append((k, v, h, m)) or "event")
    decode = lean.RawBytes().compile(app)
    message = SimpleNamespace(key=b"k", value=b"\x00not json", headers=[("h", b"1")])
    assert asyncio.run(decode(message)) == "event"
    assert made == [(b"k", b"\x00not json", [("h", b"1")], message)]


class _Fake:
    """What LeanConsumer._hand_over touches on a consumer."""

    def __init__(self, commit_every=None):
        self.calls: list[str] = []
        self._commit_every = commit_every
        self._n_acked = 0
        self.gaps: list[tuple] = []

    async def callback(self, message):
        self.calls.append(f"direct:{message.offset}")

    async def wait_first(self, *coros):
        for c in coros[1:]:
            c.close()
        await coros[0]
        self.calls[-1] = self.calls[-1].replace("direct", "raced")

    async def _add_gap(self, tp, start, end):
        self.gaps.append((tp, start, end))

    async def commit(self):
        self.calls.append("commit")


def _hand(fake, offsets, *, flowing=True, suspended=False, topic="events.payment", read=None):
    read = read if read is not None else defaultdict(lambda: None)
    flag = asyncio.Event()

    async def go():
        if suspended:
            flag.set()
        for off in offsets:
            await lean.LeanConsumer._hand_over(fake, "tp", SimpleNamespace(offset=off, topic=topic), read,
                                               lambda t: True, lambda: flowing, flag)

    asyncio.run(go())
    return read


def test_messages_go_straight_to_the_conductor_and_the_read_offset_moves():
    fake = _Fake()
    read = _hand(fake, [0, 1, 2])
    assert fake.calls == ["direct:0", "direct:1", "direct:2"] and read["tp"] == 2


def test_an_older_copy_after_a_seek_is_skipped():
    fake = _Fake()
    read = defaultdict(lambda: None, tp=7)
    _hand(fake, [5, 7, 8], read=read)
    assert fake.calls == ["direct:7", "direct:8"] and read["tp"] == 8


def test_skipped_offsets_are_recorded_as_a_gap():
    fake = _Fake()
    _hand(fake, [3, 4, 9])
    assert fake.gaps == [("tp", 5, 9)]


def test_suspended_flow_keeps_faust_race():
    fake = _Fake()
    _hand(fake, [0], suspended=True)
    assert fake.calls == ["raced:0"]
    fake = _Fake()
    _hand(fake, [0], flowing=False)
    assert fake.calls == ["raced:0"]


def test_commits_after_commit_every_acks():
    fake = _Fake(commit_every=2)
    fake._n_acked = 2
    _hand(fake, [0])
    assert fake.calls == ["commit", "direct:0"] and fake._n_acked == 0
