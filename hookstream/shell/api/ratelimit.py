"""Per-key request rate limit: a token bucket per API key, in this process (also used, keyed by
client address, for failed authentications: ``ApiContext.auth_failures``).

Each key's bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second; a
request takes one, and when none is left it is refused with the seconds until one is back (the
429's ``Retry-After``). In-process: N API processes allow a key N times the rate (documented in
docs/api.md). Buckets of keys not seen for a while are dropped, so memory stays bounded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

_MAX_BUCKETS = 100_000


class RateLimiter:
    def __init__(self, rate: float, burst: int = 0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst or max(1, math.ceil(rate)))
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, at)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key_id: str) -> float | None:
        """Take a token for ``key_id``: None when allowed, else the seconds until a token is back."""
        if self.rate <= 0:
            return None
        now = self._clock()
        tokens, at = self._buckets.get(key_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            if len(self._buckets) >= _MAX_BUCKETS and key_id not in self._buckets:
                self._prune(now)
            self._buckets[key_id] = (tokens - 1.0, now)
            return None
        self._buckets[key_id] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def wait(self, key_id: str) -> float | None:
        """Like ``take`` without taking: None when a token is there, else the seconds until one is."""
        if self.rate <= 0:
            return None
        entry = self._buckets.get(key_id)
        if entry is None:
            return None
        tokens = min(self.burst, entry[0] + (self._clock() - entry[1]) * self.rate)
        return None if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        """Drop the buckets that are full again (their keys have been quiet): nothing is lost."""
        full_after = self.burst / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}
