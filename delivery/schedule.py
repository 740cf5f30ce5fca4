"""When to try a failed delivery again, or never (dead letter). Pure: clock and randomness are inputs.

Attempts are numbered from 1, the first try, made as soon as the record is consumed. After
attempt ``n`` fails with a ``RetryLater``, attempt ``n + 1`` is due ``delays[n - 1]`` later,
give or take the jitter; once attempt ``len(delays) + 1`` has failed, ``next_attempt`` returns
None and the record goes to the dead-letter topic. With the default ``5s,5m,30m,2h,5h,10h,10h``
that is Svix's schedule: 8 attempts over about 28 hours.

The delay after a retryable failure is the largest of:

- the tier's delay with +-20% jitter, so endpoints that failed together do not all come back in
  the same second. A ``Retry-After`` never brings an attempt *earlier* than this: the schedule
  also protects the receiver, and a receiver that says "1" after a 500 is not a reason to hammer it;
- ``throttle_floor`` (60 s, Svix's rule) when the receiver timed out or said slow down (408, 429,
  502-504): retrying a struggling server 5 s later only adds to its load;
- the receiver's ``Retry-After``, honoured up to ``retry_after_cap`` (default: the schedule's
  longest delay, 10 h). Beyond the cap we still retry, at the cap: a receiver cannot park a
  message for a week, and its retries stay within the span the operator configured.

``Retry-After`` is parsed by ``delivery.outcome.classify_response`` (re-exported here as
``parse_retry_after``), which carries it on the ``RetryLater`` it returns.
"""

from __future__ import annotations

import dataclasses
import math
import random as _random
from collections.abc import Callable

from hookstream.delivery.outcome import GiveUp, Outcome, RetryLater, Success, parse_retry_after
from hookstream.core.errors import ConfigError
from hookstream.core.settings import Settings

__all__ = ["DEFAULT_JITTER", "DEFAULT_THROTTLE_FLOOR_SECONDS", "RetrySchedule", "parse_retry_after"]

DEFAULT_JITTER = 0.2
DEFAULT_THROTTLE_FLOOR_SECONDS = 60.0


def _check_seconds(value: float, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{what} must be a finite, non-negative number of seconds, not {value!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RetrySchedule:
    """The retry policy. ``random`` returns floats in [0, 1); tests pass a fixed one."""

    delays: tuple[float, ...]
    jitter: float = DEFAULT_JITTER
    throttle_floor: float = DEFAULT_THROTTLE_FLOOR_SECONDS
    retry_after_cap: float | None = None  # None: the longest of ``delays``
    random: Callable[[], float] = dataclasses.field(default=_random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        for delay in self.delays:
            _check_seconds(delay, "each retry delay")
        _check_seconds(self.throttle_floor, "throttle_floor")
        if not 0 <= self.jitter < 1:
            raise ConfigError(f"jitter must be a fraction in [0, 1), not {self.jitter!r}")
        if self.retry_after_cap is None:
            object.__setattr__(self, "retry_after_cap", max(self.delays, default=0.0))
        _check_seconds(self.retry_after_cap, "retry_after_cap")

    @classmethod
    def from_settings(cls, settings: Settings, *, random: Callable[[], float] = _random.random) -> RetrySchedule:
        return cls(delays=tuple(settings.retry_schedule), random=random)

    @property
    def max_attempts(self) -> int:
        """The first try plus one retry per delay."""
        return len(self.delays) + 1

    def next_attempt(self, attempt_no: int, now: float, outcome: Outcome) -> float | None:
        """When attempt ``attempt_no + 1`` is due (unix seconds), or None: give up, dead-letter it.

        ``attempt_no`` is the attempt that just ended with ``outcome``. Attempts skipped by an
        open circuit breaker were never made and must not be counted in it.
        """
        if isinstance(outcome, Success):
            raise ValueError("a successful delivery has no next attempt")
        if isinstance(outcome, GiveUp):
            return None
        if not isinstance(outcome, RetryLater):
            raise TypeError(f"not a delivery outcome: {outcome!r}")
        if attempt_no < 1:
            raise ValueError(f"attempts are numbered from 1, not {attempt_no}")
        if attempt_no > len(self.delays):
            return None
        return now + self._delay(self.delays[attempt_no - 1], outcome)

    def _delay(self, tier_delay: float, outcome: RetryLater) -> float:
        delay = self._jittered(tier_delay)
        if outcome.throttle:
            delay = max(delay, self.throttle_floor)
        if outcome.retry_after is not None:
            delay = max(delay, min(outcome.retry_after, self.retry_after_cap))
        return delay

    def _jittered(self, delay: float) -> float:
        """``delay`` scaled by a factor drawn uniformly from [1 - jitter, 1 + jitter)."""
        return delay * (1.0 + self.jitter * (2.0 * self.random() - 1.0))
