"""hookstream.delivery.tiers: a record goes to the tier whose delay is like its own."""

import pytest

from hookstream.delivery.tiers import choose_tier

DEFAULT = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


@pytest.mark.parametrize(
    ("delay", "tier"),
    [(0.0, 1), (4.0, 1), (5.0, 1), (60.0, 1), (260.0, 2), (300.0, 2), (1500.0, 3), (7200.0, 4), (36000.0, 6), (10**6, 6)],
)
def test_the_tier_is_the_largest_nominal_delay_within_reach(delay, tier):
    assert choose_tier(delay, DEFAULT) == tier


def test_a_jittered_short_delay_stays_in_its_own_tier():
    assert choose_tier(300.0 * 0.8, DEFAULT) == 2  # 20% short of 5 min is still the 5-minute tier


def test_a_retry_after_longer_than_the_attempts_tier_moves_it_to_a_later_tier():
    # after attempt 1 the schedule says 5 s, but the receiver asked for an hour
    assert choose_tier(3600.0, DEFAULT) == 3


def test_a_negative_delay_is_due_now():
    assert choose_tier(-3.0, DEFAULT) == 1


def test_no_delays_no_tiers():
    with pytest.raises(ValueError):
        choose_tier(1.0, ())
