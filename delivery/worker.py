"""``hookstream delivery worker``: consume delivery records, POST them, retry through tier topics.

Parts
-----
This module assembles the worker from its parts, each in its own module:

- ``delivery.loop``: the Kafka loop (consume, pause and resume tier partitions, rebalance,
  commit, shutdown). It runs on a consumer and a producer it is *given*: the shell
  (``hookstream.shell.cli.delivery``) builds them with ``hookstream.core.kafka``'s
  factories and ``loop.consumer_overrides`` / ``loop.producer_overrides``; unit tests give fakes.
- ``delivery.handler``: a ``Decision`` -> attempt row, retry-tier forward, dead letter; producing,
  set-asides, references, the infrastructure-error stop.
- ``delivery.metrics``: the metrics and the caches of their labelled children.
- ``hookstream.core.wire``: the record formats (``decode_record``, ``dead_letter_value``,
  ``set_aside_record``).

They are mixins of one ``Worker`` object: every per-record step runs on one event loop and calls
the next as a method of the same object, so the split costs the hot path nothing.

Shape (after Svix's worker)
---------------------------
The Kafka loop only consumes, bounds concurrency and commits. Each record becomes a task running
``Deliverer.deliver`` (prepare -> call -> classify, in ``delivery.attempt``), whose typed
``Decision`` ``delivery.handler`` *handles*: record the attempt, forward to a retry tier, dead-letter, or
drop. Everything runs on one asyncio event loop (uvloop) in one thread, so the consumer, the
offset trackers, the breakers and the gates need no locks; the HTTP client does its I/O on its
own Rust runtime, and the attempt log is written by its own thread.

One confluent-kafka consumer (manual commits, round-robin assignment) reads ``deliveries`` and every
retry tier topic ``deliveries.retry.N`` (N = 1 .. len(HOOKSTREAM_RETRY_SCHEDULE)). It is polled
without blocking (``consume(timeout=0)``) and the loop yields to the event loop in between: a few
milliseconds when nothing came, at once otherwise.

Retries without blocking
------------------------
A failed attempt forwards the record (new attempt in its history, ``due_at`` set) to the tier
chosen by its actual delay (``delivery.tiers``), and the source offset is committed once the
broker acknowledged the forward. A tier partition whose head record is not due yet is *paused*
and the consumer seeks back to that head; a timer on the event loop resumes it at the due time.
The poll loop itself never sleeps until a due time, and other partitions and topics keep flowing.

At-least-once
-------------
``delivery.offsets.PartitionOffsets`` per assigned partition: an offset is finished only when its
outcome is durable (a success's attempt row committed to the attempt log; a retry or dead-letter
record acknowledged by the broker through the producer's delivery callback, and its attempt row
written), and commits never pass the lowest unfinished offset. A SIGKILL at any moment loses
nothing: the records after the committed position are delivered again with the same
``webhook-id``. A producer or consumer error is an infrastructure error: the worker stops (exit
code 1) without finishing the record, and the next worker re-delivers it.

Flow control and isolation
--------------------------
At most ``concurrency`` records in flight per process: at the bound the loop stops taking records
(they wait in the client's fetch queue; no pause, so no re-fetch), polling only once a second so
rebalances are still served. Per
endpoint, ``Limits`` bounds requests in flight and records waiting; the circuit breaker skips
endpoints that are down. So a hung endpoint ties up at most its own slots for at most the
request timeout, and the healthy endpoints' records pass it by.

No record stops the worker
--------------------------
Unreadable records (not JSON, missing fields, wrong types, an id longer than its column, a
``delivery_id`` that is not the one its event id and subscription id give) are set aside on the dead-letter topic with the reason and
the original bytes (base64; a reference and an excerpt when they would not fit), and their
offsets move on. ``Deliverer.deliver`` dead-letters what must not be sent (another tenant's
subscription, a refused URL or header). An exception while handling one record (a bug a record
can trigger) dead-letters that record as ``internal_error``, logs its traceback (once per place
it came from) and counts it; only infrastructure errors stop the worker (a fatal Kafka error, a
broker that would not take a forward, the attempt-log writer gone): a log line,
``hookstream_delivery_worker_failures_total{kind}``, exit code 1, nothing committed past them.

Producing never blocks the loop and never loses a record (``delivery.handler``): a full
producer queue parks the forward in a backlog the loop drains; a record the broker or the client
will never take (too large) is replaced on the dead-letter topic by a reference and a bounded
excerpt (reason ``too_large``), and only a dead-letter topic that refuses even that stops the
worker, as a Kafka error. The attempt history a record carries is bounded
(``delivery.attempt.bounded_history``), so retries alone never make a record too large.

Memory stays bounded however many endpoints a worker meets over its life: the deliverer forgets
idle endpoints (``delivery.attempt``) and tells the worker, which drops their metric series
(``delivery.metrics.MetricCaches._forget_series``); the (event, tenant) series lookups age out in two generations.

410 Gone: the attempt dead-letters the record, logs a warning and counts
``hookstream_delivery_endpoint_gone_total``; the worker does not disable the subscription
itself (it has no write path to the store, and one 410 from a misrouted proxy should not turn an
endpoint off). Disabling is left to the operator or to automation on that metric, apart from
per-message retries, as Svix keeps it.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from hookstream.core.settings import Settings
from hookstream.core.topics import DEAD_LETTERS, DELIVERIES, retry_topic
from hookstream.core.wire import MalformedRecord, dead_letter_value, decode_record
from hookstream.delivery import metrics as m
from hookstream.delivery.attempt import Deliverer, Limits
from hookstream.delivery.breaker import BreakerConfig, EndpointBreakers
from hookstream.delivery.handler import PRODUCE_OVERHEAD, OutcomeHandler
from hookstream.core.kafka import producer_config
from hookstream.delivery.loop import CommitRelay, ConsumeLoop, consumer_overrides, producer_overrides
from hookstream.delivery.metrics import SERIES_TTL, MetricCaches
from hookstream.delivery.transport import PyreqwestTransport, Transport

__all__ = [
    "SERIES_TTL", "CommitRelay", "MalformedRecord", "Worker", "consumer_overrides", "dead_letter_value", "decode_record",
    "group_id", "install_signal_handlers", "producer_overrides",
]

def group_id(settings: Settings) -> str:
    return f"{settings.topic_prefix}hookstream-delivery"


class Worker(ConsumeLoop, OutcomeHandler, MetricCaches):
    """The delivery worker: ``consumer`` and ``producer`` are confluent-kafka clients built by the
    caller (``make_consumer(settings, group, **consumer_overrides(commits))``,
    ``make_producer(settings, **producer_overrides(**producer_options))``); ``commits`` is the ``CommitRelay`` given to the consumer as its
    ``on_commit``. ``producer_options`` must be the options the producer was built with (its
    ``message.max.bytes`` bounds what is produced as it is). ``writer`` (an attempt-log writer)
    is made from ``engine`` at ``run`` unless given."""

    def __init__(
        self,
        settings: Settings,
        *,
        table,
        engine,
        consumer=None,
        producer=None,
        commits: CommitRelay | None = None,
        writer=None,
        transport: Transport | None = None,
        concurrency: int | None = None,
        limits: Limits | None = None,
        breaker_config: BreakerConfig | None = None,
        group: str | None = None,
        follower_check: Callable[[], None] | None = None,
        producer_options: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.table = table
        self.engine = engine
        self.limits = limits or Limits()
        self.transport = transport or PyreqwestTransport(settings, max_connections_per_host=self.limits.endpoint_concurrency)
        self.concurrency = settings.delivery_concurrency if concurrency is None else concurrency
        self.group = group or group_id(settings)
        self.follower_check = follower_check or (lambda: None)
        self._init_metric_caches(time.monotonic())
        self.deliverer = Deliverer(
            settings, table, self.transport,
            breakers=EndpointBreakers(breaker_config or BreakerConfig.from_settings(settings)), limits=self.limits,
            on_attempt_start=m.IN_FLIGHT.inc, on_attempt_end=m.IN_FLIGHT.dec, on_forget=self._forget_series,
        )
        self.main_topic = settings.topic(DELIVERIES)
        self.tier_topics = [settings.topic(retry_topic(t)) for t in range(1, len(settings.retry_schedule) + 1)]
        self.dead_topic = settings.topic(DEAD_LETTERS)
        self.parts: dict[tuple[str, int], Any] = {}
        self.due_paused: dict[tuple[str, int], asyncio.TimerHandle] = {}
        self.in_flight = 0
        self.fatal: BaseException | None = None
        self._tasks: set[asyncio.Task] = set()
        self.consumer = consumer
        self.producer = producer
        if commits is not None:
            commits.target = self._on_commit
        self.writer = writer
        self.producer_config = producer_config(settings, **producer_overrides(**(producer_options or {})))
        # the largest key + value produced as it is (librdkafka counts both against
        # message.max.bytes); a larger one is set aside by reference
        self.max_value_bytes = int(self.producer_config.get("message.max.bytes", 1_000_000)) - PRODUCE_OVERHEAD
        self._backlog: deque = deque()
        self._bugs_logged: set[tuple[str, str, int]] = set()
        # a tier record due further ahead than any retry, breaker pause or Retry-After can put it
        # is not ours (a forged due_at would pause its partition for years)
        self.max_wait = 2 * max(max(settings.retry_schedule, default=0.0), 600.0) + 3600.0


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
