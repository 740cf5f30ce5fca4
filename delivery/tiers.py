"""Which retry tier topic a delayed record goes to: chosen by its actual delay, not its attempt number.

A tier consumer pauses a partition while its *head* record is not yet due, so every record
behind the head waits at least as long as the head. A tier must therefore hold records whose
delays are alike, or a record due in 5 seconds could sit behind one due in 5 hours. Choosing
the tier by attempt number breaks that as soon as a delay is not the schedule's own: a
``Retry-After`` of an hour after the first attempt, the 60-second throttle floor, or an open
circuit breaker's pause. So the tier is the one whose nominal delay is the largest not above the
actual delay (with room for the schedule's jitter, so a delay jittered 20% short still lands in
its own tier). Records in tier ``k`` then have delays between about ``delays[k-1]`` and
``delays[k]``, and the most a record can wait past its due time is that spread.

Tiers are numbered from 1, as ``hookstream.topics.retry_topic`` names them.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["choose_tier"]


def choose_tier(delay: float, delays: Sequence[float], *, jitter: float = 0.2) -> int:
    """The 1-based tier for a record due ``delay`` seconds from now.

    The tier with the largest nominal delay at most ``delay / (1 - jitter)`` (a delay jittered
    short by up to ``jitter`` still reaches its own tier); tier 1 when the delay is shorter than
    every tier's (it is due soon: the first tier's partitions move fastest).
    """
    if not delays:
        raise ValueError("a retry schedule without delays has no tiers")
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter must be in [0, 1), not {jitter!r}")
    reach = max(delay, 0.0) / (1.0 - jitter)
    chosen = 1
    best = None
    for index, nominal in enumerate(delays, start=1):
        # the largest nominal delay within reach; among equal ones the first (10h,10h -> the first)
        if nominal <= reach and (best is None or nominal > best):
            chosen, best = index, nominal
    return chosen
