"""Faust, trimmed for the stream worker: three per-event costs taken out, nothing else changed.

The stream worker runs one agent over raw bytes, at-least-once. Measured on this machine (an
empty ``take_events`` agent, uvloop, 100k events; docs/benchmarks.md), Faust spent 76-89 µs of
CPU per event before the agent saw it, and these three things were most of it:

``LeanConsumer``   Faust's fetch loop hands every message to the conductor through
                   ``Service.wait_first(callback(message), suspend_flow.wait())``: four tasks,
                   an ``asyncio.wait`` and three cancellations per message (~40 µs), only to
                   stop waiting if flow is suspended (a rebalance) while the callback is blocked
                   on a full stream buffer. ``LeanConsumer`` awaits the callback directly while
                   flow is active and not suspended, and keeps that race otherwise. Its fetch
                   loop does the same bookkeeping as Faust's (read offsets, gaps of acked
                   topics, commit every ``broker_commit_every`` acks).
``QuietMonitor``   the always-installed ``Monitor`` sensor keeps per-message statistics that
                   nothing here reads (the Faust web UI is off; our metrics are Prometheus). It
                   keeps ``stream_inbound_time``, which the aiokafka driver's stall check reads.
``RawBytes``       the events topic's schema: the key and value are the record's bytes, so
                   no codec look-up per message.

Together: 76-89 -> about 31 µs per event for the empty agent. Offsets are committed exactly as
before (checked across a rebalance and hard kills: every committed offset processed). The fetch
loop overrides a method Faust does not document as an extension point, so faust-streaming is
pinned to the version it was written against (pyproject.toml); ``tests/unit/test_streams_lean``
fails if that method's signature moves.
"""

from __future__ import annotations

import asyncio
from time import monotonic

import faust
from faust.sensors import Monitor
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as _driver

__all__ = ["LeanConsumer", "LeanTransport", "QuietMonitor", "RawBytes", "install"]

YIELD_EVERY = 100  # messages handed over before the fetch loop yields to the event loop


class QuietMonitor(Monitor):
    """No per-message statistics; commit, rebalance and assignment hooks stay Faust's."""

    def on_message_in(self, tp, offset, message) -> None:
        pass

    def on_stream_event_in(self, tp, offset, stream, event) -> None:
        self.stream_inbound_time[tp] = monotonic()  # read by the driver's "stream idle" check
        return None

    def on_stream_event_out(self, tp, offset, stream, event, state=None) -> None:
        pass

    def on_message_out(self, tp, offset, message) -> None:
        pass

    def track_tp_end_offset(self, tp, offset) -> None:
        pass


class RawBytes(faust.Schema):
    """Key and value are the record's bytes, handed over as they are."""

    def __init__(self) -> None:
        super().__init__(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    def compile(self, app, *, on_key_decode_error=None, on_value_decode_error=None, default_propagate=False):
        make_event = app.create_event

        async def to_event(message, *, propagate: bool = default_propagate):
            return make_event(message.key, message.value, message.headers, message)

        return to_event


class LeanConsumer(_driver.Consumer):
    """The aiokafka consumer with a fetch loop that awaits the conductor directly."""

    async def _drain_messages(self, fetcher) -> None:
        stopping = (self._stopped.is_set, fetcher._stopped.is_set)
        read = self._read_offset
        acked_topic = self.app.topics.acks_enabled_for
        flowing = self.app.flow_control.is_active
        suspended = self.suspend_flow
        handed = 0
        try:
            while not (stopping[0]() or stopping[1]()):
                self.diag.set_flag(CONSUMER_FETCHING)
                fetched = self.getmany(timeout=1.0)
                await asyncio.sleep(0)  # getmany may return at once, again and again
                if self.should_stop:
                    continue
                async for tp, message in fetched:
                    handed += 1
                    if handed % YIELD_EVERY == 0:
                        await asyncio.sleep(0)
                    await self._hand_over(tp, message, read, acked_topic, flowing, suspended)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _hand_over(self, tp, message, read, acked_topic, flowing, suspended) -> None:
        """One message to the conductor, unless it is older than what was read already."""
        offset = message.offset
        last = read[tp]
        if last is not None and offset < last:
            return  # a copy fetched again after a seek
        if last and offset - last > 1 and acked_topic(message.topic):
            await self._add_gap(tp, last + 1, offset)  # offsets the broker skipped (compaction, aborts)
        if self._commit_every is not None and self._n_acked >= self._commit_every:
            self._n_acked = 0
            await self.commit()
        if flowing() and not suspended.is_set():
            await self.callback(message)
        else:  # a rebalance is under way: give up on a blocked hand-over when flow is suspended
            await self.wait_first(self.callback(message), suspended.wait())
        read[tp] = offset


class LeanTransport(_driver.Transport):
    Consumer = LeanConsumer


def install(app: faust.App) -> None:
    """Use the lean consumer; call before the app's first topic or agent."""
    app.transport = LeanTransport(app.conf.broker_consumer, app)
