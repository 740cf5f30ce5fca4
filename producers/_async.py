"""The asyncio publisher: the same validation and routing, awaited instead of blocked on.

A thread of its own serves the producer's delivery reports and settles asyncio futures on the
event loop; coroutines never block the loop (a full local queue is waited out with
``asyncio.sleep``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from hookstream.core.settings import Settings
from hookstream.producers._errors import PublishError
from hookstream.producers._publisher import PublishAck, OutgoingRecord, Publisher
from hookstream.schemas import Event


class AsyncPublisher:
    """``await publisher.publish(event)`` returns once the broker acknowledged the event.

    Use ``async with AsyncPublisher(settings) as publisher:`` or ``await publisher.close()``.
    """

    def __init__(self, settings: Settings, *, delivery_timeout: float = 120.0, producer: Any = None, **config: Any) -> None:
        self._publisher = Publisher(settings, delivery_timeout=delivery_timeout, producer=producer, **config)
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._serve_reports, name="hookstream-delivery-reports", daemon=True)
        self._poller.start()

    def _serve_reports(self) -> None:
        while not self._stop.is_set():
            self._publisher.poll(0.1)

    async def publish(self, event: Event, *, timeout: float = 30.0) -> PublishAck:
        """Validate and send ``event``, and wait for the broker; raises ``InvalidEventError`` (nothing
        sent) or ``PublishError``."""
        return (await self.publish_many([event], timeout=timeout))[0]

    async def publish_many(self, events: Iterable[Event], *, timeout: float = 30.0,
                           encoded: Sequence[bytes] | None = None) -> list[PublishAck]:
        """Validate every event first (one invalid or over ``max_event_bytes``: none is sent), send
        them in order, and wait for all; raises ``PublishError`` naming every event that failed.

        ``encoded``: each event's wire bytes, when the caller has validated and encoded the events
        already (``Event.to_bytes()`` of events from ``event_from_dict``): then only their size is
        checked, and nothing is validated twice.
        """
        if encoded is None:
            records = [self._publisher.prepare(e) for e in events]  # invalid or too large: nothing sent
        else:
            records = [self._publisher.record_of(e, v) for e, v in zip(events, encoded, strict=True)]
        if not records:
            return []
        # one future for the whole call, settled once by the report thread when the last
        # acknowledgement arrives: not a future (and a thread hop) per event
        waiter = _Waiter(asyncio.get_running_loop(), len(records))
        acks: list[PublishAck] = []
        refused = None
        for record in records:
            try:
                try:
                    acks.append(self._publisher.send_record(record, on_delivery=waiter.settle, block=False))
                except BufferError:  # local queue full: let the report thread drain it
                    acks.append(await self._send_when_room(record, waiter.settle))
            except PublishError as exc:  # produce() itself refused it: send nothing after it (order)
                unsent = [r.event_id for r in records[len(acks) + 1:]]
                refused = PublishError(f"{exc}; {len(unsent)} later event(s) not sent", event_ids=[*exc.event_ids, *unsent], code=exc.code)
                waiter.forget(len(records) - len(acks))
                break
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
        except TimeoutError:
            late = [a.event_id for a in acks if not a.done]
            raise PublishError(
                f"{len(late)} event(s) not acknowledged by the broker at {self._publisher.bootstrap} within {timeout:g}s "
                f"(the first: {late[0] if late else '?'}); they are still queued, and flush() reports how they end",
                event_ids=late, code="_TIMED_OUT",
            ) from None
        failed = []
        for ack in acks:
            if ack.error is not None:
                try:
                    ack.result(0)  # raises its error, which the caller now has (flush() will not repeat it)
                except PublishError as exc:
                    failed.append(exc)
        if refused is not None:
            failed.append(refused)
        if failed:
            raise PublishError.combine(failed)
        return acks

    async def _send_when_room(self, record: OutgoingRecord, on_delivery: Callable[[PublishAck], Any]) -> PublishAck:
        while True:
            await asyncio.sleep(0.01)
            try:
                return self._publisher.send_record(record, on_delivery=on_delivery, block=False)
            except BufferError:
                pass

    async def flush(self, timeout: float = 30.0) -> None:
        """Wait for every queued event; raises like ``Publisher.flush``."""
        await asyncio.to_thread(self._publisher.flush, timeout)

    async def close(self, timeout: float = 30.0) -> None:
        """Flush, stop the report thread, refuse further sends."""
        try:
            await asyncio.to_thread(self._publisher.close, timeout)
        finally:
            self._stop.set()
            await asyncio.to_thread(self._poller.join)

    async def __aenter__(self) -> "AsyncPublisher":
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            await self.close()
            return
        try:
            await self.close()
        except PublishError as failure:
            exc.add_note(f"also: {failure}")


class _Waiter:
    """Counts the acknowledgements of one ``publish_many`` down (on whichever thread serves the
    delivery reports: the report thread, or the loop's own when ``send_record`` polls) and
    settles ``future`` on the loop when none is left."""

    __slots__ = ("loop", "future", "_left", "_lock")

    def __init__(self, loop: asyncio.AbstractEventLoop, expected: int) -> None:
        self.loop = loop
        self.future: asyncio.Future = loop.create_future()
        self._left = expected
        self._lock = threading.Lock()

    def settle(self, _ack: PublishAck) -> None:
        self.forget(1)

    def forget(self, count: int) -> None:
        """``count`` fewer acknowledgements to wait for (arrived, or never sent)."""
        with self._lock:
            self._left -= count
            last = self._left == 0
        if last:
            try:
                self.loop.call_soon_threadsafe(_set_result, self.future)
            except RuntimeError:  # the loop is closed; flush() still reports a failure
                pass


def _set_result(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
