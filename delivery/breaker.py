"""Per-endpoint circuit breaker, so one dead endpoint does not hold the worker's slots and timeouts.

Pure and clocked from outside: every call takes ``now`` (unix or monotonic seconds, as long as
the caller is consistent), so tests never sleep.

    CLOSED ──(>= failure_ratio of the results over a whole window failed, >= min_requests seen)──> OPEN
    OPEN ──(pause elapsed; the next allow() is the probe)──> HALF_OPEN
    HALF_OPEN ──(probe succeeds)──> CLOSED      (pause back to its base, window emptied)
    HALF_OPEN ──(probe fails)──> OPEN           (pause grows, up to max_pause)

A failure *ratio* over a sliding time window, as Convoy does, not a count of consecutive
failures. The consecutive count starved endpoints that are up but imperfect: one that fails every
message's first attempt and accepts its retry never sees 20 successes in a row while a burst of
first attempts is under way, opened, and then its probes (fresh records, i.e. first attempts)
failed too, so its pause kept growing (measured: 131 of 1,500 messages delivered in five
minutes). Such an endpoint fails half of all requests in the long run, and so does one that fails
a random half; both stay closed under a 70% threshold.

Defaults (Convoy's, except the window): open at ``failure_ratio`` 0.7 once ``min_requests`` 10
results were seen, over a ``window`` of 30 s (Convoy: 5 min, polled every 30 s); ``pause`` 30 s
before the probe (Convoy's breaker timeout), doubling per failed probe up to 10 min. The window
is a ring of ``buckets`` (10) time buckets of success and failure counts, so recording a result
costs a few integer operations and no per-result allocation.

The ratio is judged only once the endpoint's current run of results spans a whole window (a run
starts with the first result after the window was empty, and again when the breaker closes).
Without that rule the first seconds of traffic decide alone: a burst of first attempts fails
100% until their retries come back (``HOOKSTREAM_RETRY_SCHEDULE``'s first delay, 5 s), which is
exactly the transient that opened the old breaker; and after a probe closes the breaker, the
records it skipped all come back at once as first attempts. So the window must be well above the
first retry delay. The price: an endpoint that is down is shed after one window of attempts
(30 s), not after 20 of them; meanwhile its records use attempts as the retry schedule has them
(two at most with the default schedule), and the worker's per-endpoint gates
(``delivery.attempt.Limits``) bound what a hung one can hold.

An endpoint that fails every first attempt can still open when its traffic jumps (a burst of
first attempts on top of a window already spanned); the probe rule below is what closes it again.

While the breaker is not letting attempts through, ``allow`` answers False and the caller
reschedules the record *without* counting an attempt: a skipped attempt was never made, so it
must not push the message towards the dead-letter topic. ``reopen_at`` says when to come back.

Only retryable failures (timeouts, connection errors, 5xx, 429) count against the endpoint. A
4xx or 3xx answer means the endpoint is up and answering quickly, which is all the breaker cares
about; those messages are dead-lettered on their own account.

The probe is preferably a record that was attempted before (``allow(now, tried=True)``): a
first attempt waits ``PROBE_WAIT_SHARE`` of the pause longer. An endpoint that fails every first
attempt (or every attempt but the n-th) answers a retried record's probe and closes; one that is
down fails either; the old breaker took its probes from fresh records, which such an endpoint
always failed, so its pause only grew.

Reports that arrive while OPEN come from attempts started before it opened; they describe the
past and are ignored. In HALF_OPEN the first report decides. A probe whose result never comes
(its worker crashed) is given up after ``probe_timeout`` and another probe is allowed.

Forgetting (bounded memory): a closed breaker with no result in the last window holds nothing a
new one would not (``idle``). An open one does: forgetting it would send a down endpoint's
records straight back at it, and a new breaker needs a whole window of failures to open again.
So an open or half-open breaker is kept until it closes, or until nobody asked about it for
``open_ttl`` (1 h: far longer than the longest pause, so an endpoint with records still coming
back from the retry tiers keeps it).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

from hookstream.delivery.outcome import Outcome, RetryLater
from hookstream.core.errors import ConfigError
from hookstream.core.settings import default_of

__all__ = ["BreakerConfig", "BreakerState", "CircuitBreaker", "EndpointBreakers"]

# After the pause, a first attempt waits this share of it for a record that was attempted before
# to be the probe (the records skipped while open come back spread over the schedule's +-20%
# jitter of the pause, so this covers most of them)
PROBE_WAIT_SHARE = 0.25


class BreakerState(enum.IntEnum):
    """Values chosen for a gauge: 0 closed, 1 open, 2 half-open."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


@dataclasses.dataclass(frozen=True, kw_only=True)
class BreakerConfig:
    failure_ratio: float = default_of("breaker_failure_ratio")  # share of failed results over the window that opens the breaker
    min_requests: int = default_of("breaker_min_requests")  # ... once at least this many results were seen in it
    window: float = default_of("breaker_window_seconds")  # seconds of results judged; well above the first retry delay
    buckets: int = 10  # the window's granularity
    pause: float = default_of("breaker_pause_seconds")  # first wait before a probe
    pause_growth: float = 2.0  # each failed probe multiplies the pause by this ...
    max_pause: float = 600.0  # ... up to this: an endpoint back up is noticed within 10 minutes
    probe_timeout: float = 60.0  # a probe that never reported is given up after this
    open_ttl: float = 3600.0  # an open breaker nobody asked about for this long is forgotten

    def __post_init__(self) -> None:
        for name in ("min_requests", "buckets"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"breaker {name} must be a positive integer, not {value!r}")
        if not 0 < self.failure_ratio <= 1:
            raise ConfigError(f"breaker failure_ratio must be above 0 and at most 1, not {self.failure_ratio!r}")
        if self.window <= 0:
            raise ConfigError("breaker window must be positive")
        if not 0 < self.pause <= self.max_pause:
            raise ConfigError("breaker pause must be positive and at most max_pause")
        if self.pause_growth < 1:
            raise ConfigError("breaker pause_growth must be at least 1 (the pause never shrinks)")
        if self.probe_timeout <= 0:
            raise ConfigError("breaker probe_timeout must be positive")
        if self.open_ttl < self.max_pause + self.probe_timeout:
            raise ConfigError("breaker open_ttl must be at least max_pause + probe_timeout (an open breaker would be forgotten while waiting)")

    @classmethod
    def from_settings(cls, settings) -> "BreakerConfig":
        """The ``HOOKSTREAM_BREAKER_*`` settings; a pause above 10 min raises the cap with it."""
        return cls(
            failure_ratio=settings.breaker_failure_ratio, min_requests=settings.breaker_min_requests,
            window=settings.breaker_window_seconds, pause=settings.breaker_pause_seconds,
            max_pause=max(600.0, settings.breaker_pause_seconds),
            open_ttl=max(3600.0, 2 * settings.breaker_pause_seconds + 60.0),
        )


class CircuitBreaker:
    """The breaker of one endpoint."""

    __slots__ = (
        "config", "_state", "_pause", "_opened_at", "_probe_started", "_last",
        "_ok", "_bad", "_head", "_width", "_total", "_failures", "_since",
    )

    def __init__(self, config: BreakerConfig | None = None) -> None:
        self.config = config = config or BreakerConfig()
        self._state = BreakerState.CLOSED
        self._pause = config.pause
        self._opened_at = 0.0
        self._probe_started = 0.0
        self._last = float("-inf")  # last result, or last allow() while not closed
        self._width = config.window / config.buckets
        # one bucket more than the window holds: the newest one is filling, so the ring always
        # spans at least a whole window (between window and window + width)
        self._ok = [0] * (config.buckets + 1)
        self._bad = [0] * (config.buckets + 1)
        self._head = 0  # number of the newest bucket (time // width)
        self._total = 0  # results in the ring
        self._failures = 0  # failures in the ring
        self._since = 0.0  # when the current run of results began

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def window_counts(self) -> tuple[int, int]:
        """(failures, results) in the window as of the last result recorded."""
        return self._failures, self._total

    @property
    def reopen_at(self) -> float | None:
        """When ``allow`` may next say yes; None while closed (it says yes now)."""
        if self._state is BreakerState.OPEN:
            return self._opened_at + self._pause
        if self._state is BreakerState.HALF_OPEN:
            return self._probe_started + self.config.probe_timeout
        return None

    def allow(self, now: float, tried: bool = False) -> bool:
        """May an attempt be made now? True at most once per pause while not closed: the probe.
        ``tried``: the record was attempted before. For ``probe_wait`` after the pause only such
        a record may probe; a first attempt may once that has passed."""
        if self._state is BreakerState.CLOSED:
            return True
        self._last = now
        if now < self.reopen_at:
            return False
        if self._state is BreakerState.OPEN and not tried and now < self.reopen_at + self._probe_wait():
            return False
        self._state = BreakerState.HALF_OPEN
        self._probe_started = now
        return True

    def retry_at(self, now: float, tried: bool = False) -> float:
        """When a record ``allow`` turned away should come back."""
        at = self.reopen_at or now
        if self._state is BreakerState.OPEN and not tried and now >= at:
            at += self._probe_wait()  # the pause is over, but a first attempt waits for a retried probe
        return at

    def _probe_wait(self) -> float:
        return self._pause * PROBE_WAIT_SHARE

    def record_success(self, now: float) -> None:
        if self._state is BreakerState.CLOSED:
            self._count(now, False)
        elif self._state is BreakerState.HALF_OPEN:
            self._last = now
            self._state = BreakerState.CLOSED
            self._pause = self.config.pause
            self._clear()

    def record_failure(self, now: float) -> None:
        state = self._state
        if state is BreakerState.CLOSED:
            self._count(now, True)
            config = self.config
            if (
                self._total >= config.min_requests
                and self._failures >= config.failure_ratio * self._total
                and now - self._since >= config.window
            ):
                self._open(now)
        elif state is BreakerState.HALF_OPEN:
            self._last = now
            self._pause = min(self._pause * self.config.pause_growth, self.config.max_pause)
            self._open(now)

    def record(self, outcome: Outcome, now: float) -> None:
        """Feed an attempt's outcome: a ``RetryLater`` is a failure, any answer else a success."""
        if isinstance(outcome, RetryLater):
            self.record_failure(now)
        else:
            self.record_success(now)

    def idle(self, now: float) -> bool:
        """Could this breaker be forgotten now without changing what the endpoint gets?"""
        if self._state is BreakerState.CLOSED:
            return now - self._last >= self.config.window
        return now - self._last >= self.config.open_ttl

    # ------------------------------------------------------------------ the window
    def _count(self, now: float, failed: bool) -> None:
        self._last = now
        bucket = int(now // self._width)
        if bucket > self._head:
            self._advance(bucket)
        # (a clock that stepped back counts in the newest bucket)
        i = self._head % len(self._ok)
        if self._total == 0:
            self._since = now  # the window was empty: a new run of results begins
        if failed:
            self._bad[i] += 1
            self._failures += 1
        else:
            self._ok[i] += 1
        self._total += 1

    def _advance(self, bucket: int) -> None:
        """Move the ring's head to ``bucket``, emptying the buckets that fell out of the window."""
        n = len(self._ok)
        if bucket - self._head >= n:
            self._clear()
        else:
            ok, bad = self._ok, self._bad
            for b in range(self._head + 1, bucket + 1):
                i = b % n
                self._total -= ok[i] + bad[i]
                self._failures -= bad[i]
                ok[i] = bad[i] = 0
        self._head = bucket

    def _clear(self) -> None:
        n = len(self._ok)
        self._ok = [0] * n
        self._bad = [0] * n
        self._total = self._failures = 0

    def _open(self, now: float) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = now

    def __repr__(self) -> str:
        return f"CircuitBreaker(state={self._state.name}, failures={self._failures}/{self._total}, pause={self._pause})"


class EndpointBreakers:
    """One breaker per endpoint id, made on first use; ``states()`` feeds the gauge; ``sweep``
    forgets idle ones so a worker's memory follows its recent endpoints, not all it ever saw."""

    def __init__(self, config: BreakerConfig | None = None) -> None:
        self.config = config or BreakerConfig()
        self._breakers: dict[str, CircuitBreaker] = {}

    def __getitem__(self, endpoint_id: str) -> CircuitBreaker:
        breaker = self._breakers.get(endpoint_id)
        if breaker is None:
            breaker = self._breakers[endpoint_id] = CircuitBreaker(self.config)
        return breaker

    def get(self, endpoint_id: str) -> CircuitBreaker | None:
        """The endpoint's breaker if it has one (never makes one)."""
        return self._breakers.get(endpoint_id)

    def __contains__(self, endpoint_id: str) -> bool:
        return endpoint_id in self._breakers

    def __len__(self) -> int:
        return len(self._breakers)

    def forget(self, endpoint_id: str) -> bool:
        """Drop an endpoint's breaker (endpoint deleted or disabled); True if it had one."""
        return self._breakers.pop(endpoint_id, None) is not None

    def sweep(self, now: float, busy: Callable[[str], bool] | None = None) -> list[str]:
        """Forget every idle breaker whose endpoint is not ``busy`` (records in flight, whose
        results would land on a breaker nobody holds any more); returns their endpoint ids."""
        gone = [e for e, b in self._breakers.items() if b.idle(now) and not (busy and busy(e))]
        for endpoint_id in gone:
            del self._breakers[endpoint_id]
        return gone

    def states(self) -> dict[str, BreakerState]:
        return {endpoint_id: breaker.state for endpoint_id, breaker in self._breakers.items()}
