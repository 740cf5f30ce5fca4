"""Per-endpoint circuit breaker, so one dead endpoint does not hold the worker's slots and timeouts.

Pure and clocked from outside: every call takes ``now`` (unix or monotonic seconds, as long as
the caller is consistent), so tests never sleep.

    CLOSED ──(failure_threshold consecutive failures)──> OPEN
    OPEN ──(pause elapsed; the next allow() is the probe)──> HALF_OPEN
    HALF_OPEN ──(probe succeeds)──> CLOSED      (pause back to its base)
    HALF_OPEN ──(probe fails)──> OPEN           (pause grows, up to max_pause)

The threshold is high on purpose (20 by default, not 2 or 3): a few failures in a row are what
retries are for; the breaker is for endpoints that are down, not ones that hiccup.

While the breaker is not letting attempts through, ``allow`` answers False and the caller
reschedules the record *without* counting an attempt: a skipped attempt was never made, so it
must not push the message towards the dead-letter topic. ``reopen_at`` says when to come back.

Only retryable failures (timeouts, connection errors, 5xx, 429) count against the endpoint. A
4xx or 3xx answer means the endpoint is up and answering quickly, which is all the breaker cares
about; those messages are dead-lettered on their own account.

Reports that arrive while OPEN come from attempts started before it opened; they describe the
past and are ignored. In HALF_OPEN the first report decides. A probe whose result never comes
(its worker crashed) is given up after ``probe_timeout`` and another probe is allowed.
"""

from __future__ import annotations

import dataclasses
import enum

from delivery.outcome import Outcome, RetryLater
from hookstream.errors import ConfigError

__all__ = ["BreakerConfig", "BreakerState", "CircuitBreaker", "EndpointBreakers"]


class BreakerState(enum.IntEnum):
    """Values chosen for a gauge: 0 closed, 1 open, 2 half-open."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


@dataclasses.dataclass(frozen=True, kw_only=True)
class BreakerConfig:
    failure_threshold: int = 20
    pause: float = 30.0  # first wait before a probe
    pause_growth: float = 2.0  # each failed probe multiplies the pause by this ...
    max_pause: float = 600.0  # ... up to this: an endpoint back up is noticed within 10 minutes
    probe_timeout: float = 60.0  # a probe that never reported is given up after this

    def __post_init__(self) -> None:
        if isinstance(self.failure_threshold, bool) or not isinstance(self.failure_threshold, int) or self.failure_threshold < 1:
            raise ConfigError(f"failure_threshold must be a positive integer, not {self.failure_threshold!r}")
        if not 0 < self.pause <= self.max_pause:
            raise ConfigError("breaker pause must be positive and at most max_pause")
        if self.pause_growth < 1:
            raise ConfigError("breaker pause_growth must be at least 1 (the pause never shrinks)")
        if self.probe_timeout <= 0:
            raise ConfigError("breaker probe_timeout must be positive")


class CircuitBreaker:
    """The breaker of one endpoint."""

    __slots__ = ("config", "_state", "_failures", "_pause", "_opened_at", "_probe_started")

    def __init__(self, config: BreakerConfig | None = None) -> None:
        self.config = config or BreakerConfig()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._pause = self.config.pause
        self._opened_at = 0.0
        self._probe_started = 0.0

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    @property
    def reopen_at(self) -> float | None:
        """When ``allow`` may next say yes; None while closed (it says yes now)."""
        if self._state is BreakerState.OPEN:
            return self._opened_at + self._pause
        if self._state is BreakerState.HALF_OPEN:
            return self._probe_started + self.config.probe_timeout
        return None

    def allow(self, now: float) -> bool:
        """May an attempt be made now? True at most once per pause while not closed: the probe."""
        if self._state is BreakerState.CLOSED:
            return True
        if now < self.reopen_at:
            return False
        self._state = BreakerState.HALF_OPEN
        self._probe_started = now
        return True

    def record_success(self, now: float) -> None:
        if self._state is BreakerState.OPEN:
            return
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._pause = self.config.pause

    def record_failure(self, now: float) -> None:
        if self._state is BreakerState.OPEN:
            return
        if self._state is BreakerState.HALF_OPEN:
            self._pause = min(self._pause * self.config.pause_growth, self.config.max_pause)
            self._open(now)
            return
        self._failures += 1
        if self._failures >= self.config.failure_threshold:
            self._open(now)

    def record(self, outcome: Outcome, now: float) -> None:
        """Feed an attempt's outcome: a ``RetryLater`` is a failure, any answer else a success."""
        if isinstance(outcome, RetryLater):
            self.record_failure(now)
        else:
            self.record_success(now)

    def _open(self, now: float) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = now

    def __repr__(self) -> str:
        return f"CircuitBreaker(state={self._state.name}, failures={self._failures}, pause={self._pause})"


class EndpointBreakers:
    """One breaker per endpoint id, made on first use; ``states()`` feeds the gauge."""

    def __init__(self, config: BreakerConfig | None = None) -> None:
        self.config = config or BreakerConfig()
        self._breakers: dict[str, CircuitBreaker] = {}

    def __getitem__(self, endpoint_id: str) -> CircuitBreaker:
        breaker = self._breakers.get(endpoint_id)
        if breaker is None:
            breaker = self._breakers[endpoint_id] = CircuitBreaker(self.config)
        return breaker

    def forget(self, endpoint_id: str) -> None:
        """Drop an endpoint's breaker (endpoint deleted or disabled), so the map does not grow forever."""
        self._breakers.pop(endpoint_id, None)

    def states(self) -> dict[str, BreakerState]:
        return {endpoint_id: breaker.state for endpoint_id, breaker in self._breakers.items()}
