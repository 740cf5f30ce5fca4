"""hookstream.delivery.schedule: retry delays, jitter, the throttle floor and Retry-After within bounds."""

from __future__ import annotations

import random

import pytest

from hookstream.delivery import outcome, schedule
from hookstream.delivery.outcome import GiveUp, GiveUpReason, RetryLater, RetryReason, Success
from hookstream.delivery.schedule import RetrySchedule
from hookstream.core.errors import ConfigError
from hookstream.core.settings import Settings

NOW = 1_800_000_000.0
DEFAULT = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
SERVER_ERROR = RetryLater(RetryReason.SERVER_ERROR, 500)
TIMEOUT = RetryLater(RetryReason.TIMEOUT, throttle=True)


def _no_jitter() -> float:
    return 0.5  # the midpoint of [0, 1): factor exactly 1


def _schedule(**kw) -> RetrySchedule:
    kw.setdefault("delays", DEFAULT)
    kw.setdefault("random", _no_jitter)
    return RetrySchedule(**kw)


def _delay(sched: RetrySchedule, attempt_no: int, result) -> float | None:
    due = sched.next_attempt(attempt_no, NOW, result)
    return None if due is None else due - NOW


def test_public_names_are_exported() -> None:
    for name in schedule.__all__:
        assert hasattr(schedule, name)
    assert schedule.parse_retry_after is outcome.parse_retry_after


def test_schedule_from_default_settings_is_5s_5m_30m_2h_5h_10h_10h() -> None:
    assert RetrySchedule.from_settings(Settings()).delays == DEFAULT


def test_schedule_from_settings_follows_hookstream_retry_schedule() -> None:
    settings = Settings.from_env({"HOOKSTREAM_RETRY_SCHEDULE": "1s,2m"})
    assert RetrySchedule.from_settings(settings, random=_no_jitter).delays == (1.0, 120.0)


@pytest.mark.parametrize("attempt_no, expected", list(enumerate(DEFAULT, start=1)))
def test_each_failed_attempt_waits_its_tier_delay(attempt_no: int, expected: float) -> None:
    assert _delay(_schedule(), attempt_no, SERVER_ERROR) == expected


def test_after_the_last_tier_the_record_is_dead_lettered() -> None:
    sched = _schedule()
    assert sched.max_attempts == 8
    assert sched.next_attempt(7, NOW, SERVER_ERROR) is not None
    assert sched.next_attempt(8, NOW, SERVER_ERROR) is None
    assert sched.next_attempt(50, NOW, SERVER_ERROR) is None


def test_give_up_is_dead_lettered_at_once() -> None:
    assert _schedule().next_attempt(1, NOW, GiveUp(GiveUpReason.CLIENT_ERROR, 404)) is None


def test_a_success_has_no_next_attempt() -> None:
    with pytest.raises(ValueError, match="successful"):
        _schedule().next_attempt(1, NOW, Success(200))


def test_attempts_are_numbered_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        _schedule().next_attempt(0, NOW, SERVER_ERROR)


def test_something_not_an_outcome_is_refused() -> None:
    with pytest.raises(TypeError):
        _schedule().next_attempt(1, NOW, 500)  # type: ignore[arg-type]


def test_jitter_spreads_the_delay_by_at_most_20_percent() -> None:
    assert _delay(_schedule(random=lambda: 0.0), 2, SERVER_ERROR) == pytest.approx(240.0)
    assert _delay(_schedule(random=lambda: 0.999999), 2, SERVER_ERROR) == pytest.approx(360.0, rel=1e-5)


def test_jitter_with_a_real_random_source_stays_in_bounds_and_varies() -> None:
    sched = _schedule(random=random.Random(7).random)
    delays = [_delay(sched, 3, SERVER_ERROR) for _ in range(2000)]
    assert all(1440.0 <= d < 2160.0 for d in delays)
    assert max(delays) - min(delays) > 600.0  # spread across most of the +-20% band


def test_jitter_can_be_turned_off() -> None:
    assert _delay(_schedule(jitter=0.0, random=lambda: 0.0), 2, SERVER_ERROR) == 300.0


def test_timeout_waits_at_least_the_throttle_floor() -> None:
    assert _delay(_schedule(), 1, TIMEOUT) == 60.0


def test_rate_limited_waits_at_least_the_throttle_floor() -> None:
    assert _delay(_schedule(), 1, RetryLater(RetryReason.RATE_LIMITED, 429, throttle=True)) == 60.0


def test_throttle_floor_never_shortens_a_longer_tier() -> None:
    assert _delay(_schedule(), 3, TIMEOUT) == 1800.0


def test_plain_server_error_is_not_floored() -> None:
    assert _delay(_schedule(), 1, SERVER_ERROR) == 5.0


def test_retry_after_longer_than_the_tier_is_honoured() -> None:
    result = RetryLater(RetryReason.RATE_LIMITED, 429, retry_after=900.0, throttle=True)
    assert _delay(_schedule(), 1, result) == 900.0


def test_retry_after_shorter_than_the_tier_does_not_bring_the_attempt_earlier() -> None:
    result = RetryLater(RetryReason.SERVER_ERROR, 503, retry_after=1.0, throttle=True)
    assert _delay(_schedule(), 2, result) == 300.0


def test_retry_after_is_capped_at_the_longest_tier_by_default() -> None:
    result = RetryLater(RetryReason.RATE_LIMITED, 429, retry_after=7 * 86400.0, throttle=True)
    assert _delay(_schedule(), 1, result) == 36000.0


def test_retry_after_cap_is_configurable() -> None:
    result = RetryLater(RetryReason.RATE_LIMITED, 429, retry_after=7200.0, throttle=True)
    assert _delay(_schedule(retry_after_cap=3600.0), 1, result) == 3600.0


def test_retry_after_does_not_extend_the_schedule_past_its_last_tier() -> None:
    result = RetryLater(RetryReason.RATE_LIMITED, 429, retry_after=10.0, throttle=True)
    assert _schedule().next_attempt(8, NOW, result) is None


def test_empty_schedule_means_no_retries() -> None:
    sched = RetrySchedule(delays=())
    assert sched.max_attempts == 1
    assert sched.next_attempt(1, NOW, SERVER_ERROR) is None


@pytest.mark.parametrize(
    "kw",
    [
        {"delays": (5.0, -1.0)},
        {"delays": (float("inf"),)},
        {"delays": (5.0,), "jitter": 1.0},
        {"delays": (5.0,), "jitter": -0.1},
        {"delays": (5.0,), "throttle_floor": -1.0},
        {"delays": (5.0,), "retry_after_cap": float("nan")},
    ],
)
def test_unusable_configuration_is_a_config_error(kw: dict) -> None:
    with pytest.raises(ConfigError):
        RetrySchedule(**kw)
