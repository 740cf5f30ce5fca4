"""The asyncio publisher: the same validation and routing, awaited instead of blocked on.

A thread of its own serves the producer's delivery reports and settles asyncio futures on the
event loop; coroutines never block the loop (a full local queue is waited out with
``asyncio.sleep``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
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

    async def publish_many(self, events: Iterable[Event], *, timeout: float = 30.0) -> list[PublishAck]:
        """Validate every event first (one invalid or over ``max_event_bytes``: none is sent), send
        them in order, and wait for all; raises ``PublishError`` naming every event that failed."""
        records = [self._publisher.prepare(e) for e in events]  # invalid or too large: nothing sent
        loop = asyncio.get_running_loop()
        futures, refused = [], None
        for record in records:
            try:
                futures.append(await self._enqueue(loop, record))
            except PublishError as exc:  # produce() itself refused it: send nothing after it (order)
                unsent = [r.event_id for r in records[len(futures) + 1:]]
                refused = PublishError(f"{exc}; {len(unsent)} later event(s) not sent", event_ids=[*exc.event_ids, *unsent], code=exc.code)
                break
        try:
            deliveries = await asyncio.wait_for(asyncio.gather(*(asyncio.shield(f) for f in futures)), timeout)
        except TimeoutError:
            late = [r.event_id for r, f in zip(records, futures) if not f.done()]
            raise PublishError(
                f"{len(late)} event(s) not acknowledged by the broker at {self._publisher.bootstrap} within {timeout:g}s "
                f"(the first: {late[0]}); they are still queued, and flush() reports how they end",
                event_ids=late, code="_TIMED_OUT",
            ) from None
        failed = []
        for d in deliveries:
            try:
                d.result(0)
            except PublishError as exc:
                failed.append(exc)
        if refused is not None:
            failed.append(refused)
        if failed:
            raise PublishError.combine(failed)
        return deliveries

    async def _enqueue(self, loop: asyncio.AbstractEventLoop, record: OutgoingRecord) -> asyncio.Future:
        future = loop.create_future()

        def settle(delivery: PublishAck) -> None:  # on the report thread
            try:
                loop.call_soon_threadsafe(_set_result, future, delivery)
            except RuntimeError:  # the loop is closed; flush() still reports a failure
                pass

        while True:
            try:
                self._publisher.send_record(record, on_delivery=settle, block=False)
                return future
            except BufferError:  # local queue full: let the report thread drain it
                await asyncio.sleep(0.01)

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


def _set_result(future: asyncio.Future, delivery: PublishAck) -> None:
    if not future.done():
        future.set_result(delivery)
