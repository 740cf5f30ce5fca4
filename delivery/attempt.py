"""One delivery, as Svix's worker shapes it: prepare -> call -> classify -> handle, to a typed ``Decision``.

``Deliverer.deliver(record)`` never touches Kafka or the database. It looks the subscription up
in the worker's table, asks the endpoint's circuit breaker and concurrency gate, makes at most
one HTTP attempt, classifies it (``delivery.outcome``), schedules the next one
(``delivery.schedule``, ``delivery.tiers``) and returns what must happen next:

- ``Delivered``   a 2xx: record the attempt, done.
- ``Retry``       forward the updated record (attempt history, due time) to retry tier ``tier``.
                  ``report`` is None when no attempt was made (``skipped``): the breaker is open
                  or the endpoint already has its fill of records waiting. A skipped attempt is
                  not counted, so it never pushes a message towards the dead-letter topic.
- ``DeadLettered`` give up: the retries ran out, a 4xx/3xx/410 answered, or the record cannot be
                  delivered at all (``reason`` says which): the worker writes it to the dead-letter
                  topic (where ``dead_letters.DeadLetter`` reads it back). It keeps every attempt.
- ``Dropped``     the subscription was deleted or disabled: nothing is sent (see below).

Unknown (deleted) or disabled subscriptions, and why
----------------------------------------------------
A record whose subscription is not in the table was deleted: dropped, as Svix drops messages of
a deleted endpoint (there is nowhere to send them and nobody to replay them to). Only not at
first sight: each worker follows the subscriptions topic on its own, so a record fanned out for a
subscription created a moment ago can reach a worker whose view has not caught up yet. A record
fresh from the ``deliveries`` topic (no ``due_at``) whose subscription is unknown is therefore
sent once through the first retry tier without an attempt (``skipped="subscription_unknown"``);
if the subscription is still unknown when it comes back, it is dropped. A disabled
subscription's records are dropped too, as Svix does, because the owner turned deliveries off;
"recover since/until" replays them from the ``deliveries`` topic (retained 7 days) once it is
enabled again. Both are counted (``hookstream_delivery_dropped_total{reason}``) and logged.

Memory: per-endpoint state (the concurrency gate, the decoded signing secrets, the URL and
header verdicts, the circuit breaker) is made on first use and forgotten when idle
(``_sweep``), so a worker that has seen 100,000 endpoints holds state only for the recent ones.
Never while records of the endpoint are in flight or waiting for a slot, and never an open
breaker before its ``open_ttl`` (``delivery.breaker`` says why). ``on_forget(endpoint)`` tells
the worker, which drops the endpoint's metric series with it.

Records that must never be sent
-------------------------------
Before any POST, ``deliver`` refuses (dead-letters, with the reason and a metric ``code``) a record
naming a subscription of *another* tenant (``tenant_mismatch``: a record must not carry one
tenant's event to another tenant's endpoint), a subscription whose URL this worker's policy
refuses (``url_refused``: ``check_url``'s rules, without DNS: the transport checks every address
it connects to) and one whose custom headers the HTTP client would refuse or that the worker
sets itself (``invalid_header``). The URL and header verdicts are cached per subscription
version, so a record pays a dict lookup for them. The store validates both when a subscription is
saved (the headers by the same rules, ``hookstream.subscriptions.headers``); the worker checks
again because the subscriptions topic is its only source and it must not trust what an older
release or another writer put there.

Whatever the endpoint answers, or fails to, is the attempt's outcome, never an exception: the
transport raises a ``TransportFailure`` for every failure of the request or the answer (a
malformed status line, broken framing, a TLS refusal, a timeout) and ``_call`` classifies it
(README, "Bad answers from endpoints", says what each kind becomes).

Bugs are not delivery failures: an exception that is not a transport failure (a bug, a
cancelled task, the client closed under a request) propagates out of ``deliver`` untouched and
never counts against the endpoint; the worker dead-letters that one record as ``internal_error``
and goes on (``delivery.worker``).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from hookstream.delivery.breaker import BreakerState, EndpointBreakers
from hookstream.delivery.envelope import payload
from hookstream.delivery.errors import NoValidSecretError, TransportFailure
from hookstream.delivery.outcome import GiveUp, Outcome, RetryLater, RetryReason, Success, classify_response
from hookstream.delivery.schedule import RetrySchedule
from hookstream.delivery.signing import Secret, delivery_headers
from hookstream.delivery.tiers import choose_tier
from hookstream.delivery.transport import Transport
from hookstream.core.errors import ValidationError
from hookstream.core.redact import redact_urls
from hookstream.core.wire import DeliveryRecord
from hookstream.core.settings import Settings, default_of
from hookstream.subscriptions.headers import header_problem
from hookstream.subscriptions.urls import Reason, UnsafeURLError, check_url

__all__ = [
    "AttemptReport",
    "DeadLettered",
    "Decision",
    "Delivered",
    "Deliverer",
    "Dropped",
    "Limits",
    "Retry",
    "bounded_history",
    "endpoint_refusal",
    "header_problem",
]

log = logging.getLogger("hookstream.delivery")

MAX_ERROR_CHARS = 300
SWEEP_EVERY = 10.0  # seconds between passes forgetting idle endpoints
# A record's history keeps its first attempt and the last HISTORY_KEEP_LAST, with the count of
# those left out between them, so a record never outgrows the topic's message limit however many
# attempts it made (an entry is at most ~450 bytes: the error is cut at MAX_ERROR_CHARS).
HISTORY_KEEP_LAST = 10


@dataclasses.dataclass(frozen=True, slots=True)
class AttemptReport:
    """One attempt made: what the attempt log, the metrics and the record's history keep."""

    attempt: int
    at: float  # unix seconds when it started
    duration: float  # seconds
    outcome: Outcome
    status: int | None  # HTTP status, None when no response came
    error: str | None  # transport failure, never a secret or the URL
    excerpt: bytes = b""

    @property
    def result(self) -> str:
        o = self.outcome
        if isinstance(o, Success):
            return "success"
        return f"{'retry' if isinstance(o, RetryLater) else 'give_up'}:{o.reason}"

    def history_entry(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "at": round(self.at, 3),
            "status": self.status,
            "error": self.error,
            "duration": round(self.duration, 4),
            "result": self.result,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class Delivered:
    report: AttemptReport


@dataclasses.dataclass(frozen=True, slots=True)
class Retry:
    record: DeliveryRecord  # with due_at, and the new attempt in its history when one was made
    tier: int
    report: AttemptReport | None
    skipped: str | None = None  # "breaker_open", "endpoint_busy" or "subscription_unknown": no attempt made


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLettered:
    """The decision to give up on ``record``: it goes to the dead-letter topic."""

    record: DeliveryRecord
    reason: str  # for people: what happened, with the HTTP status or last failure
    report: AttemptReport | None
    disable_endpoint: bool = False
    # for metrics: retries_exhausted, client_error, redirect, gone, malformed, no_valid_secret,
    # invalid_secret, tenant_mismatch, url_refused, invalid_header (the worker adds internal_error, too_large)
    code: str = "retries_exhausted"


@dataclasses.dataclass(frozen=True, slots=True)
class Dropped:
    reason: str  # "subscription_deleted" | "subscription_disabled"


Decision = Delivered | Retry | DeadLettered | Dropped


@dataclasses.dataclass(frozen=True, kw_only=True)
class Limits:
    """Per-endpoint isolation.

    ``endpoint_concurrency``: requests in flight per endpoint at most. ``endpoint_backlog``:
    records an endpoint may hold (in flight plus waiting for a slot) while it makes no progress.
    Past the backlog, an endpoint none of whose attempts finished in the last ``stall_seconds``
    gets its further records deferred to the first retry tier without an attempt, so a hung
    endpoint holds at most its backlog of the worker's records, never all of them. An endpoint
    that is merely busy (its attempts keep finishing) is not deferred: its queue may grow, within
    the worker's overall in-flight bound, because it drains.
    """

    endpoint_concurrency: int = default_of("endpoint_concurrency")
    endpoint_backlog: int = default_of("endpoint_backlog")
    stall_seconds: float = 1.0


class _Slots:
    """A FIFO semaphore with O(1) acquire. ``asyncio.Semaphore.acquire`` in Python 3.11 checks
    ``locked()``, which walks every waiter: with hundreds of records queued on one endpoint
    that is quadratic."""

    __slots__ = ("free", "waiters")

    def __init__(self, n: int) -> None:
        self.free = n
        self.waiters: collections.deque[asyncio.Future] = collections.deque()

    async def __aenter__(self) -> None:
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter  # a releaser hands its slot over directly
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed a slot as we were cancelled: pass it on
            elif waiter in self.waiters:  # (a release may have popped it already)
                self.waiters.remove(waiter)
            raise

    async def __aexit__(self, *exc) -> None:
        self._release()

    def _release(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1


class _Gate:
    __slots__ = ("slots", "admitted", "progress_at")

    def __init__(self, concurrency: int) -> None:
        self.slots = _Slots(concurrency)
        self.admitted = 0
        self.progress_at = 0.0  # last attempt finished, or first record admitted to an idle gate


class Deliverer:
    def __init__(
        self,
        settings: Settings,
        table,  # hookstream.subscriptions.view.SubscriptionTable (or anything with .get(id))
        transport: Transport,
        *,
        schedule: RetrySchedule | None = None,
        breakers: EndpointBreakers | None = None,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
        on_attempt_start: Callable[[], None] | None = None,
        on_attempt_end: Callable[[], None] | None = None,
        on_forget: Callable[[str], None] | None = None,
        sweep_every: float = SWEEP_EVERY,
    ) -> None:
        self.settings = settings
        self.table = table
        self.transport = transport
        self.schedule = schedule or default_schedule(settings)
        self.breakers = breakers if breakers is not None else EndpointBreakers()  # (an empty one is falsy)
        self.limits = limits or Limits()
        self.clock = clock
        self._gates: dict[str, _Gate] = {}
        self._secrets: dict[str, tuple[int, list[Secret]]] = {}
        self._refusals: dict[str, tuple[int, tuple[str, str] | None]] = {}
        self._on_start = on_attempt_start or (lambda: None)
        self._on_end = on_attempt_end or (lambda: None)
        self._on_forget = on_forget or (lambda endpoint: None)
        self.sweep_every = sweep_every
        self._next_sweep = 0.0

    # ------------------------------------------------------------------ the pipeline
    async def deliver(self, record: DeliveryRecord) -> Decision:
        sub = self.table.get(record.subscription_id)
        if sub is None:
            if record.due_at is None:
                # first sight: this worker's view may be a moment behind the fan-out's; look again later
                now = self.clock()
                return self._skip(record, now, now + self.schedule.delays[0], "subscription_unknown")
            self._forget(record.subscription_id)
            return Dropped("subscription_deleted")
        if sub.tenant_id != record.tenant_id:
            # never name the other tenant: the dead letter is listed under the record's tenant
            return DeadLettered(record, f"tenant_mismatch: subscription {sub.id} belongs to another tenant", None, code="tenant_mismatch")
        if not sub.active:
            self._forget(sub.id)
            return Dropped("subscription_disabled")
        refusal = self._refusal(sub)
        if refusal is not None:
            return DeadLettered(record, refusal[1], None, code=refusal[0])
        secrets = self._signing_secrets(sub)
        if secrets is None:
            return DeadLettered(record, f"invalid_secret: a signing secret of subscription {sub.id} cannot be decoded",
                              None, code="invalid_secret")
        try:
            body = _body(record)
        except ValidationError as exc:
            return DeadLettered(record, f"malformed: {exc}", None, code="malformed")
        now = self.clock()
        if now >= self._next_sweep:
            self._sweep(now, keep=sub.id)
        gate = self._gate(sub.id)
        if gate.admitted >= self.limits.endpoint_backlog and now - gate.progress_at > self.limits.stall_seconds:
            return self._skip(record, now, now + self.schedule.delays[0], "endpoint_busy")
        breaker = self.breakers[sub.id]
        probe = breaker.state is not BreakerState.CLOSED
        tried = record.attempt > 0  # the better probe: see delivery.breaker
        if not breaker.allow(now, tried):
            return self._skip(record, now, breaker.retry_at(now, tried), "breaker_open")
        if gate.admitted == 0:
            gate.progress_at = now
        gate.admitted += 1
        try:
            async with gate.slots:
                if not probe and breaker.state is not BreakerState.CLOSED:
                    # it opened while this record waited for a slot: do not feed a dead endpoint
                    return self._skip(record, self.clock(), breaker.reopen_at or now, "breaker_open")
                report = await self._call(record, sub, body, secrets)
                gate.progress_at = self.clock()
        finally:
            gate.admitted -= 1
        if report is None:
            return DeadLettered(record, "no_valid_secret: the subscription has no signing secret valid now", None, code="no_valid_secret")
        breaker.record(report.outcome, self.clock())
        return self._handle(record, report)

    async def _call(self, record: DeliveryRecord, sub, body: bytes, secrets: list[Secret]) -> AttemptReport | None:
        """Sign and POST; the transport's failure becomes the report's outcome, never an exception."""
        started = self.clock()
        try:
            headers = delivery_headers(record.delivery_id, int(started), body, secrets)
        except NoValidSecretError:
            return None
        if sub.headers:
            headers = {**sub.headers, **headers}
        status = error = None
        excerpt = b""
        t0 = time.perf_counter()
        self._on_start()
        try:
            response = await self.transport.post(sub.url, body, headers)
        except UnsafeURLError as exc:
            # the address it resolves to now is refused: as good as unreachable (DNS can change back)
            outcome: Outcome = RetryLater(RetryReason.CONNECTION_ERROR)
            error = _short(redact_urls(f"refused address: {exc}"))
        except TransportFailure as exc:
            # the endpoint's failure, however it broke (delivery.transport translated it)
            outcome = classify_response(exc)
            error = _describe(exc, sub.url)
        else:
            status, excerpt = response.status, response.excerpt
            outcome = classify_response(
                status, headers=response.headers, now=started,
                dead_letter_client_errors=self.settings.dead_letter_client_errors,
            )
        finally:
            self._on_end()
        return AttemptReport(record.attempt + 1, started, time.perf_counter() - t0, outcome, status, error, excerpt)

    def _handle(self, record: DeliveryRecord, report: AttemptReport) -> Decision:
        outcome = report.outcome
        if isinstance(outcome, Success):
            return Delivered(report)
        done = dataclasses.replace(
            record, attempt=report.attempt, attempts=bounded_history(record.attempts, report.history_entry()), due_at=None
        )
        if isinstance(outcome, GiveUp):
            reason = f"{outcome.reason}" + (f" (HTTP {outcome.status})" if outcome.status else "")
            return DeadLettered(done, reason, report, disable_endpoint=outcome.disable_endpoint, code=str(outcome.reason))
        now = self.clock()
        due = self.schedule.next_attempt(report.attempt, now, outcome)
        if due is None:
            last = f"{outcome.reason}" + (f" (HTTP {outcome.status})" if outcome.status else "")
            return DeadLettered(done, f"retries_exhausted after {report.attempt} attempts, last {last}", report)
        tier = choose_tier(due - now, self.schedule.delays, jitter=self.schedule.jitter)
        return Retry(dataclasses.replace(done, due_at=round(due, 3)), tier, report)

    def _skip(self, record: DeliveryRecord, now: float, due: float, why: str) -> Retry:
        # spread the skipped records over a little more than the wait (the schedule's jitter), so
        # an endpoint's backlog does not come back all in the same instant when its breaker reopens
        due = max(due, now)
        due += (due - now) * self.schedule.jitter * self.schedule.random()
        tier = choose_tier(due - now, self.schedule.delays, jitter=self.schedule.jitter)
        return Retry(dataclasses.replace(record, due_at=round(due, 3)), tier, None, skipped=why)

    # ------------------------------------------------------------------ helpers
    def _gate(self, endpoint: str) -> _Gate:
        gate = self._gates.get(endpoint)
        if gate is None:
            gate = self._gates[endpoint] = _Gate(self.limits.endpoint_concurrency)
        return gate

    def _forget(self, endpoint: str) -> None:
        """The endpoint was deleted or disabled: drop what this worker keeps for it."""
        self.breakers.forget(endpoint)
        self._secrets.pop(endpoint, None)
        self._refusals.pop(endpoint, None)
        gate = self._gates.get(endpoint)
        if gate is not None and gate.admitted == 0:
            del self._gates[endpoint]
        self._on_forget(endpoint)

    def _sweep(self, now: float, keep: str = "") -> None:
        """Forget the endpoints that are idle: nothing in flight or waiting (gate), and a breaker
        with nothing worth keeping (``CircuitBreaker.idle``: closed and no result for a window,
        or open and not asked about for its ``open_ttl``). Run every ``sweep_every`` seconds, a
        pass over the endpoints seen lately: amortised, a few dict operations per delivery."""
        self._next_sweep = now + self.sweep_every
        gates = self._gates

        def busy(endpoint: str) -> bool:
            gate = gates.get(endpoint)
            return gate is not None and gate.admitted > 0

        gone = self.breakers.sweep(now, busy)
        breakers = self.breakers
        for endpoint in [e for e, g in gates.items() if g.admitted == 0 and e not in breakers]:
            del gates[endpoint]
        for cache in (self._secrets, self._refusals):  # cheap to make again (a refused one has no gate)
            for endpoint in [e for e in cache if e not in gates and e != keep]:  # (keep: being delivered to)
                del cache[endpoint]
        for endpoint in gone:
            self._on_forget(endpoint)

    def _signing_secrets(self, sub) -> list[Secret] | None:
        """The subscription's signing keys, checked once per subscription version; ``sign`` itself
        leaves out the ones expired at the attempt's timestamp. The topic reader decodes secrets
        (``Secret.parse``) and marks a subscription whose secrets do not decode (``sealed_error``),
        so this is a second guard: None when one is not a ``Secret`` at all, which is the
        subscription's fault, not a worker bug. One warning per subscription version, naming the
        subscription and never the secret."""
        cached = self._secrets.get(sub.id)
        if cached is None or cached[0] != sub.version:
            keys = list(sub.secrets)
            if not all(isinstance(s, Secret) for s in keys):  # a subscription not built by the store or the topic reader
                keys = None
                log.warning("subscription %s (version %s) has a signing secret that cannot be decoded; "
                            "its deliveries are dead-lettered as invalid_secret", sub.id, sub.version)
            cached = self._secrets[sub.id] = (sub.version, keys)
        return cached[1]


    def _refusal(self, sub) -> tuple[str, str] | None:
        """``endpoint_refusal`` of the subscription, computed once per subscription version."""
        cached = self._refusals.get(sub.id)
        if cached is None or cached[0] != sub.version:
            cached = self._refusals[sub.id] = (sub.version, endpoint_refusal(sub, self.settings))
        return cached[1]


def bounded_history(attempts: tuple[dict[str, Any], ...], entry: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """``attempts`` plus ``entry``, keeping the first attempt and the last ``HISTORY_KEEP_LAST``;
    the ones between are replaced by one ``{"omitted": n}`` entry (the count of attempts left out)."""
    history = (*attempts, entry)
    if len(history) <= HISTORY_KEEP_LAST + 2:
        return history
    dropped = history[1:-HISTORY_KEEP_LAST]
    omitted = 0
    for a in dropped:  # a marker from an earlier trim stands for its own count
        n = a.get("omitted")
        omitted += n if type(n) is int and n > 0 else 1
    return (history[0], {"omitted": omitted}, *history[-HISTORY_KEEP_LAST:])


class _ResolvedAtConnect(OSError):
    """Host names are resolved by the transport, which checks each address it connects to."""


def _no_dns(host: str, port: int) -> list[str]:
    raise _ResolvedAtConnect("resolved when connecting")


def endpoint_refusal(sub, settings: Settings) -> tuple[str, str] | None:
    """``(code, reason)`` when a subscription must not be sent to at all, else None.

    The URL goes through ``check_url`` (scheme, http allowed, port, literal and ``localhost``
    addresses) without DNS: the worker's transport resolves and checks every address when it
    connects, and a blocking lookup has no place on the event loop."""
    if sub.sealed_error:
        # its secrets did not open (a key id this worker lacks): nothing can be signed; the
        # dead letter names the key id, and `dlq replay` sends it once the key is back
        return "no_valid_secret", f"no_valid_secret: {sub.sealed_error}"
    try:
        check_url(sub.url, settings, resolver=_no_dns)
    except UnsafeURLError as exc:
        if exc.reason is not Reason.UNRESOLVABLE:
            return "url_refused", f"url_refused: {exc}"
    problem = header_problem(sub.headers)
    if problem is not None:
        return "invalid_header", f"invalid_header: {problem}"
    return None


def default_schedule(settings: Settings) -> RetrySchedule:
    """The settings' schedule. The 60 s throttle floor never exceeds the longest configured delay,
    so a shortened schedule (tests, staging) is not stretched to a minute by one timeout."""
    base = RetrySchedule.from_settings(settings)
    return dataclasses.replace(base, throttle_floor=min(base.throttle_floor, max(base.delays, default=0.0)))


def _body(record: DeliveryRecord) -> bytes:
    """The exact bytes signed and sent: ``{"type", "timestamp", "data"}`` from the event."""
    event = record.event if isinstance(record.event, dict) else {}
    data = event.get("data", {})
    try:
        occurred = dt.datetime.fromisoformat(record.occurred_at)
    except (TypeError, ValueError):
        raise ValidationError(f"occurred_at {str(record.occurred_at)[:40]!r} is not an RFC 3339 time") from None
    return payload(record.event_type, occurred, data)


def _short(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _describe(exc: BaseException, url: str) -> str:
    """The failure in one line without the URL (a URL may carry a token in its query). The
    client may print the URL in its own normalised form, not ours: every URL left is masked."""
    message = redact_urls(str(exc).replace(url, "<url>").splitlines()[0]) if str(exc) else ""
    return _short(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)
