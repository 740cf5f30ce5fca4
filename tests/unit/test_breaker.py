"""delivery.breaker: per-endpoint circuit breaker, driven by an injected clock."""

from __future__ import annotations

import pytest

from delivery import breaker as breaker_module
from delivery.breaker import BreakerConfig, BreakerState, CircuitBreaker, EndpointBreakers
from delivery.outcome import GiveUp, GiveUpReason, RetryLater, RetryReason, Success
from hookstream.errors import ConfigError

T0 = 1_000.0


def _fail(breaker: CircuitBreaker, times: int, now: float = T0) -> None:
    for _ in range(times):
        breaker.record_failure(now)


def _opened(config: BreakerConfig | None = None, now: float = T0) -> CircuitBreaker:
    breaker = CircuitBreaker(config)
    _fail(breaker, breaker.config.failure_threshold, now)
    assert breaker.state is BreakerState.OPEN
    return breaker


def test_public_names_are_exported() -> None:
    for name in breaker_module.__all__:
        assert hasattr(breaker_module, name)


def test_gauge_values_are_0_closed_1_open_2_half_open() -> None:
    assert [int(BreakerState.CLOSED), int(BreakerState.OPEN), int(BreakerState.HALF_OPEN)] == [0, 1, 2]


def test_a_new_breaker_is_closed_and_lets_attempts_through() -> None:
    breaker = CircuitBreaker()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow(T0)
    assert breaker.reopen_at is None


def test_default_threshold_is_twenty_consecutive_failures_not_a_handful() -> None:
    breaker = CircuitBreaker()
    _fail(breaker, 19)
    assert breaker.state is BreakerState.CLOSED and breaker.allow(T0)
    _fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN


def test_threshold_is_configurable() -> None:
    breaker = CircuitBreaker(BreakerConfig(failure_threshold=5))
    _fail(breaker, 5)
    assert breaker.state is BreakerState.OPEN


def test_a_success_resets_the_consecutive_failure_count() -> None:
    breaker = CircuitBreaker()
    _fail(breaker, 19)
    breaker.record_success(T0)
    _fail(breaker, 19)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 19


def test_open_breaker_skips_attempts_until_the_pause_has_passed() -> None:
    breaker = _opened()
    assert breaker.reopen_at == T0 + 30.0
    assert not breaker.allow(T0)
    assert not breaker.allow(T0 + 29.999)


def test_skipped_attempts_do_not_count_or_extend_the_pause() -> None:
    breaker = _opened()
    for second in range(30):
        assert not breaker.allow(T0 + second)
    assert breaker.consecutive_failures == 20
    assert breaker.reopen_at == T0 + 30.0
    assert breaker.allow(T0 + 30.0)


def test_after_the_pause_exactly_one_probe_is_let_through() -> None:
    breaker = _opened()
    assert breaker.allow(T0 + 30.0)
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow(T0 + 30.0)
    assert not breaker.allow(T0 + 45.0)


def test_a_successful_probe_closes_the_breaker() -> None:
    breaker = _opened()
    breaker.allow(T0 + 30.0)
    breaker.record_success(T0 + 30.5)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 0
    assert breaker.allow(T0 + 31.0)


def test_a_failed_probe_reopens_with_a_longer_pause() -> None:
    breaker = _opened()
    breaker.allow(T0 + 30.0)
    breaker.record_failure(T0 + 31.0)
    assert breaker.state is BreakerState.OPEN
    assert breaker.reopen_at == T0 + 31.0 + 60.0
    assert not breaker.allow(T0 + 90.0)
    assert breaker.allow(T0 + 91.0)


def test_the_pause_grows_up_to_max_pause() -> None:
    breaker = _opened(BreakerConfig(pause=30.0, pause_growth=2.0, max_pause=100.0))
    pauses = []
    for _ in range(4):
        now = breaker.reopen_at
        assert breaker.allow(now)
        breaker.record_failure(now)
        pauses.append(breaker.reopen_at - now)
    assert pauses == [60.0, 100.0, 100.0, 100.0]


def test_closing_resets_the_pause_to_its_base() -> None:
    breaker = _opened()
    breaker.allow(T0 + 30.0)
    breaker.record_failure(T0 + 30.0)  # pause now 60 s
    breaker.allow(T0 + 90.0)
    breaker.record_success(T0 + 90.0)
    _fail(breaker, 20, now=T0 + 100.0)
    assert breaker.reopen_at == T0 + 100.0 + 30.0


def test_a_probe_that_never_reports_is_given_up_after_probe_timeout() -> None:
    breaker = _opened()
    assert breaker.allow(T0 + 30.0)
    assert not breaker.allow(T0 + 30.0 + 59.0)
    assert breaker.allow(T0 + 30.0 + 60.0)
    assert breaker.state is BreakerState.HALF_OPEN


def test_late_reports_while_open_describe_the_past_and_are_ignored() -> None:
    breaker = _opened()
    breaker.record_success(T0 + 1.0)
    assert breaker.state is BreakerState.OPEN
    breaker.record_failure(T0 + 2.0)
    assert breaker.reopen_at == T0 + 30.0


def test_retry_later_outcomes_count_as_failures() -> None:
    breaker = CircuitBreaker(BreakerConfig(failure_threshold=4))
    for reason in RetryReason:
        breaker.record(RetryLater(reason), T0)
    assert breaker.state is BreakerState.OPEN


@pytest.mark.parametrize(
    "answer",
    [Success(200), GiveUp(GiveUpReason.CLIENT_ERROR, 404), GiveUp(GiveUpReason.REDIRECT, 302), GiveUp(GiveUpReason.GONE, 410)],
)
def test_any_answer_that_is_not_retryable_shows_the_endpoint_is_up(answer) -> None:
    breaker = CircuitBreaker()
    _fail(breaker, 19)
    breaker.record(answer, T0)
    assert breaker.consecutive_failures == 0


def test_a_probe_answered_with_4xx_closes_the_breaker() -> None:
    breaker = _opened()
    breaker.allow(T0 + 30.0)
    breaker.record(GiveUp(GiveUpReason.CLIENT_ERROR, 400), T0 + 30.0)
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize(
    "kw",
    [
        {"failure_threshold": 0},
        {"failure_threshold": 2.5},
        {"pause": 0.0},
        {"pause": 700.0},  # above max_pause
        {"pause_growth": 0.5},
        {"probe_timeout": 0.0},
    ],
)
def test_unusable_configuration_is_a_config_error(kw: dict) -> None:
    with pytest.raises(ConfigError):
        BreakerConfig(**kw)


def test_each_endpoint_has_its_own_breaker() -> None:
    breakers = EndpointBreakers(BreakerConfig(failure_threshold=2))
    _fail(breakers["ep_down"], 2)
    assert breakers["ep_down"].state is BreakerState.OPEN
    assert breakers["ep_up"].allow(T0)
    assert breakers.states() == {"ep_down": BreakerState.OPEN, "ep_up": BreakerState.CLOSED}


def test_forgetting_an_endpoint_drops_its_breaker() -> None:
    breakers = EndpointBreakers(BreakerConfig(failure_threshold=1))
    _fail(breakers["ep"], 1)
    breakers.forget("ep")
    breakers.forget("never-seen")
    assert breakers.states() == {}
    assert breakers["ep"].state is BreakerState.CLOSED


def test_repr_shows_state_failures_and_pause_for_logs() -> None:
    assert repr(_opened()) == "CircuitBreaker(state=OPEN, failures=20, pause=30.0)"
