"""hookstream.delivery.breaker: per-endpoint circuit breaker (failure ratio over a time window), driven by an injected clock."""

from __future__ import annotations

import random

import pytest

from hookstream.delivery import breaker as breaker_module
from hookstream.delivery.breaker import BreakerConfig, BreakerState, CircuitBreaker, EndpointBreakers
from hookstream.delivery.outcome import GiveUp, GiveUpReason, RetryLater, RetryReason, Success
from hookstream.core.errors import ConfigError

T0 = 3_000_000.0  # a multiple of the default bucket width (3 s), so bucket edges fall on T0 + 3k
WINDOW = BreakerConfig().window


def _feed(breaker: CircuitBreaker, results: str, start: float, end: float) -> None:
    """Record ``results`` ("x" a failure, "." a success) spread evenly from ``start`` to ``end``."""
    step = (end - start) / max(len(results) - 1, 1)
    for i, r in enumerate(results):
        (breaker.record_failure if r == "x" else breaker.record_success)(start + i * step)


def _opened(config: BreakerConfig | None = None) -> CircuitBreaker:
    """A breaker that opened at T0: min_requests failures over the whole window before it."""
    breaker = CircuitBreaker(config)
    _feed(breaker, "x" * breaker.config.min_requests, T0 - breaker.config.window, T0)
    assert breaker.state is BreakerState.OPEN
    return breaker


def test_everything_exported_exists() -> None:
    for name in breaker_module.__all__:
        assert hasattr(breaker_module, name)


def test_state_values_are_the_gauge_values() -> None:
    assert [int(BreakerState.CLOSED), int(BreakerState.OPEN), int(BreakerState.HALF_OPEN)] == [0, 1, 2]


def test_a_new_breaker_is_closed_and_lets_attempts_through() -> None:
    breaker = CircuitBreaker()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow(T0)
    assert breaker.reopen_at is None


# ---------------------------------------------------------------------------- ratio, min requests, window
def test_seventy_percent_failures_over_a_window_open_it() -> None:
    breaker = CircuitBreaker()
    _feed(breaker, "..." + "x" * 7, T0 - WINDOW, T0)
    assert breaker.state is BreakerState.OPEN
    assert breaker.window_counts == (7, 10)


def test_sixty_percent_failures_keep_it_closed() -> None:
    breaker = CircuitBreaker()
    _feed(breaker, "...." + "x" * 6, T0 - WINDOW, T0)
    assert breaker.state is BreakerState.CLOSED and breaker.allow(T0)


def test_the_ratio_is_configurable() -> None:
    breaker = CircuitBreaker(BreakerConfig(failure_ratio=0.5))
    _feed(breaker, "....." + "x" * 5, T0 - WINDOW, T0)
    assert breaker.state is BreakerState.OPEN


def test_fewer_than_min_requests_never_open_it() -> None:
    breaker = CircuitBreaker()
    _feed(breaker, "x" * 9, T0 - WINDOW, T0)
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure(T0 + 0.5)
    assert breaker.state is BreakerState.OPEN


def test_min_requests_is_configurable() -> None:
    breaker = CircuitBreaker(BreakerConfig(min_requests=50))
    _feed(breaker, "x" * 49, T0 - WINDOW, T0)
    assert breaker.state is BreakerState.CLOSED


def test_failures_older_than_the_window_no_longer_count() -> None:
    breaker = CircuitBreaker()
    for k in range(9):  # T0 .. T0+24, one per 3 s bucket
        breaker.record_failure(T0 + 3 * k)
    breaker.record_failure(T0 + 40)  # the window now holds the buckets from T0+9 on
    assert breaker.window_counts == (7, 7)
    assert breaker.state is BreakerState.CLOSED  # with every failure kept it would be 10 of 10


def test_a_burst_of_failures_at_the_start_of_traffic_does_not_decide_alone() -> None:
    """The first seconds of an endpoint that fails every first attempt are all failures (the
    retries have not come back yet): no verdict before the run of results spans a window."""
    breaker = CircuitBreaker()
    _feed(breaker, "x" * 200, T0, T0 + 5)
    assert breaker.state is BreakerState.CLOSED
    _feed(breaker, "x" * 10, T0 + 6, T0 + WINDOW)  # still failing a whole window later: down
    assert breaker.state is BreakerState.OPEN


def test_a_quiet_window_starts_a_new_run() -> None:
    breaker = CircuitBreaker()
    _feed(breaker, "x" * 5, T0, T0 + 20)
    _feed(breaker, "x" * 50, T0 + 20 + 2 * WINDOW, T0 + 25 + 2 * WINDOW)
    assert breaker.state is BreakerState.CLOSED


def test_an_endpoint_failing_each_first_attempt_stays_closed() -> None:
    """5 new messages a second, each failing once and accepted on its retry 5 s later."""
    breaker = CircuitBreaker()
    for second in range(300):
        now = T0 + second
        for _ in range(5):
            breaker.record_failure(now)
        if second >= 5:
            for _ in range(5):
                breaker.record_success(now + 0.5)
        assert breaker.state is BreakerState.CLOSED, second


def test_an_endpoint_failing_a_random_half_stays_closed() -> None:
    rng = random.Random(12)
    breaker = CircuitBreaker()
    for i in range(6000):
        now = T0 + i * 0.05
        (breaker.record_failure if rng.random() < 0.5 else breaker.record_success)(now)
        assert breaker.state is BreakerState.CLOSED, i


def test_an_endpoint_that_is_down_opens_after_a_window() -> None:
    breaker = CircuitBreaker()
    opened = None
    for i in range(1000):
        now = T0 + i * 0.1
        breaker.record_failure(now)
        if breaker.state is BreakerState.OPEN:
            opened = now
            break
    assert opened == pytest.approx(T0 + WINDOW)


# ---------------------------------------------------------------------------- open, half-open, probes
def test_open_breaker_skips_attempts_until_the_pause_has_passed() -> None:
    breaker = _opened()
    assert breaker.reopen_at == T0 + 30.0
    assert not breaker.allow(T0, tried=True)
    assert not breaker.allow(T0 + 29.999, tried=True)
    assert breaker.allow(T0 + 30.0, tried=True)


def test_the_first_record_allowed_after_the_pause_is_the_only_probe() -> None:
    breaker = _opened()
    assert breaker.allow(T0 + 30.0, tried=True)
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow(T0 + 30.0, tried=True)
    assert not breaker.allow(T0 + 45.0, tried=True)


def test_a_successful_probe_closes_the_breaker_and_empties_the_window() -> None:
    breaker = _opened()
    breaker.allow(T0 + 30.0, tried=True)
    breaker.record_success(T0 + 30.5)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.window_counts == (0, 0)
    assert breaker.allow(T0 + 31.0, tried=True)
    # the records it skipped come back as first attempts: a new run must span a window again
    _feed(breaker, "x" * 100, T0 + 31.0, T0 + 40.0)
    assert breaker.state is BreakerState.CLOSED


def test_a_failed_probe_reopens_with_a_longer_pause() -> None:
    breaker = _opened()
    breaker.allow(T0 + 30.0, tried=True)
    breaker.record_failure(T0 + 31.0)
    assert breaker.state is BreakerState.OPEN
    assert breaker.reopen_at == T0 + 31.0 + 60.0
    assert not breaker.allow(T0 + 90.0, tried=True)
    assert breaker.allow(T0 + 91.0, tried=True)


def test_the_pause_grows_up_to_its_cap() -> None:
    breaker = _opened(BreakerConfig(pause=30.0, pause_growth=2.0, max_pause=100.0))
    pauses = []
    for _ in range(4):
        now = breaker.reopen_at
        assert breaker.allow(now, tried=True)
        breaker.record_failure(now)
        pauses.append(breaker.reopen_at - now)
    assert pauses == [60.0, 100.0, 100.0, 100.0]


def test_the_pause_goes_back_to_its_base_after_the_breaker_closed() -> None:
    breaker = _opened()
    breaker.allow(T0 + 30.0, tried=True)
    breaker.record_failure(T0 + 30.0)  # pause now 60 s
    breaker.allow(T0 + 90.0, tried=True)
    breaker.record_success(T0 + 90.0)
    _feed(breaker, "x" * 10, T0 + 100.0, T0 + 100.0 + WINDOW)
    assert breaker.reopen_at == T0 + 100.0 + WINDOW + 30.0


def test_a_probe_that_never_reports_is_given_up_after_the_probe_timeout() -> None:
    breaker = _opened()
    assert breaker.allow(T0 + 30.0, tried=True)
    assert breaker.reopen_at == T0 + 30.0 + 60.0
    assert not breaker.allow(T0 + 30.0 + 59.0, tried=True)
    assert breaker.allow(T0 + 30.0 + 60.0, tried=True)
    assert breaker.state is BreakerState.HALF_OPEN


def test_a_first_attempt_waits_a_little_for_a_retried_record_to_probe() -> None:
    """An endpoint failing every first attempt fails a fresh probe; a retried record's probe
    tells whether it is up. A first attempt may probe once a quarter of the pause has passed."""
    breaker = _opened()
    wait = 30.0 * breaker_module.PROBE_WAIT_SHARE
    assert not breaker.allow(T0 + 30.0)
    assert breaker.retry_at(T0 + 30.0) == T0 + 30.0 + wait  # it comes back after the wait, not at once
    assert breaker.retry_at(T0 + 10.0) == T0 + 30.0  # (before the pause is over: the pause)
    assert breaker.retry_at(T0 + 30.0, tried=True) == T0 + 30.0
    assert not breaker.allow(T0 + 30.0 + wait - 0.01)
    assert breaker.allow(T0 + 30.0 + 1.0, tried=True)
    assert breaker.state is BreakerState.HALF_OPEN


def test_without_a_retried_record_a_first_attempt_probes_after_the_wait() -> None:
    breaker = _opened()
    assert breaker.allow(T0 + 30.0 + 30.0 * breaker_module.PROBE_WAIT_SHARE)
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.record_failure(T0 + 40.0)  # the wait grows with the pause
    assert breaker.retry_at(T0 + 40.0 + 60.0) == T0 + 40.0 + 60.0 + 60.0 * breaker_module.PROBE_WAIT_SHARE


def test_reports_from_before_it_opened_are_ignored_while_open() -> None:
    breaker = _opened()
    breaker.record_success(T0 + 1.0)
    assert breaker.state is BreakerState.OPEN
    breaker.record_failure(T0 + 2.0)
    assert breaker.reopen_at == T0 + 30.0


def test_retry_later_outcomes_count_as_failures() -> None:
    breaker = CircuitBreaker(BreakerConfig(min_requests=4))
    for i, reason in enumerate(RetryReason):
        breaker.record(RetryLater(reason), T0 + i * WINDOW / 3)
    assert breaker.state is BreakerState.OPEN


@pytest.mark.parametrize(
    "answer",
    [Success(200), GiveUp(GiveUpReason.CLIENT_ERROR, 404), GiveUp(GiveUpReason.REDIRECT, 302), GiveUp(GiveUpReason.GONE, 410)],
)
def test_any_answer_that_is_not_retryable_shows_the_endpoint_is_up(answer) -> None:
    breaker = CircuitBreaker()
    _feed(breaker, "x" * 5, T0, T0 + 1)
    breaker.record(answer, T0 + 2)
    assert breaker.window_counts == (5, 6)


def test_a_probe_answered_with_4xx_closes_the_breaker() -> None:
    breaker = _opened()
    breaker.allow(T0 + 30.0, tried=True)
    breaker.record(GiveUp(GiveUpReason.CLIENT_ERROR, 400), T0 + 30.0)
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize(
    "kw",
    [
        {"min_requests": 0},
        {"min_requests": 2.5},
        {"buckets": 0},
        {"failure_ratio": 0.0},
        {"failure_ratio": 1.2},
        {"window": 0.0},
        {"pause": 0.0},
        {"pause": 700.0},  # above max_pause
        {"pause_growth": 0.5},
        {"probe_timeout": 0.0},
        {"open_ttl": 60.0},  # shorter than a pause: an open breaker would be forgotten while waiting
    ],
)
def test_unusable_configuration_is_a_config_error(kw: dict) -> None:
    with pytest.raises(ConfigError):
        BreakerConfig(**kw)


# ---------------------------------------------------------------------------- many endpoints, forgetting
def test_each_endpoint_has_its_own_breaker() -> None:
    breakers = EndpointBreakers()
    _feed(breakers["ep_down"], "x" * 10, T0 - WINDOW, T0)
    assert breakers["ep_down"].state is BreakerState.OPEN
    assert breakers["ep_up"].allow(T0)
    assert breakers.states() == {"ep_down": BreakerState.OPEN, "ep_up": BreakerState.CLOSED}


def test_get_never_makes_a_breaker() -> None:
    breakers = EndpointBreakers()
    assert breakers.get("ep") is None and "ep" not in breakers and len(breakers) == 0
    assert breakers.get("ep") is None
    assert breakers["ep"] is breakers.get("ep")


def test_forgetting_an_endpoint_drops_its_breaker() -> None:
    breakers = EndpointBreakers()
    _feed(breakers["ep"], "x" * 10, T0 - WINDOW, T0)
    assert breakers.forget("ep")
    assert not breakers.forget("never-seen")
    assert breakers.states() == {}
    assert breakers["ep"].state is BreakerState.CLOSED


def test_a_closed_breaker_is_idle_a_window_after_its_last_result() -> None:
    breaker = CircuitBreaker()
    breaker.record_success(T0)
    assert not breaker.idle(T0 + WINDOW - 1)
    assert breaker.idle(T0 + WINDOW)


def test_an_open_breaker_is_kept_while_asked_about_and_forgotten_after_open_ttl() -> None:
    breaker = _opened()
    ttl = breaker.config.open_ttl
    assert not breaker.idle(T0 + ttl - 1)
    breaker.allow(T0 + ttl - 1)  # a skipped record came back: the endpoint still has traffic
    assert not breaker.idle(T0 + 2 * ttl - 2)
    assert breaker.idle(T0 + 2 * ttl - 1)


def test_sweep_forgets_idle_breakers_but_not_busy_or_open_ones() -> None:
    breakers = EndpointBreakers()
    breakers["idle"].record_success(T0)
    breakers["busy"].record_success(T0)
    breakers["recent"].record_success(T0 + WINDOW)
    _feed(breakers["open"], "x" * 10, T0 - WINDOW, T0)
    gone = breakers.sweep(T0 + WINDOW + 1, busy=lambda e: e == "busy")
    assert gone == ["idle"]
    assert set(breakers.states()) == {"busy", "recent", "open"}


def test_a_hundred_thousand_endpoints_leave_only_the_recent_ones() -> None:
    """1,000 new endpoints a second, every hundredth one down (its breaker opens and stays open
    until open_ttl), swept every 10 s: the map holds the last window's endpoints and the last
    open_ttl's open breakers, not all 100,000."""
    config = BreakerConfig(min_requests=2, open_ttl=700.0)
    breakers = EndpointBreakers(config)
    largest = 0
    for i in range(100_000):
        now = T0 + i / 1000
        breaker = breakers[f"ep_{i}"]
        if i % 100 == 0:  # down: a failure now and one a window later (recorded ahead of the clock)
            breaker.record_failure(now)
            breaker.record_failure(now + config.window)
            assert breaker.state is BreakerState.OPEN
        else:
            breaker.record_success(now)
        if i % 10_000 == 0:
            breakers.sweep(now)
        largest = max(largest, len(breakers))
    # closed ones of the last window + sweep interval at 1,000/s, plus the 1,000 open ones at most
    assert largest <= (WINDOW + 10) * 1000 + 1000 + 1
    assert sum(1 for s in breakers.states().values() if s is BreakerState.OPEN) == 1000  # none forgotten early


def test_repr_shows_state_window_and_pause_for_logs() -> None:
    assert repr(_opened()) == "CircuitBreaker(state=OPEN, failures=10/10, pause=30.0)"
