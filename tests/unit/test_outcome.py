"""hookstream.delivery.outcome: every HTTP status and transport failure -> a typed outcome."""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
from email.utils import format_datetime

import httpx
import pyreqwest.exceptions as reqwest_errors
import pytest
from multidict import CIMultiDict

from hookstream.delivery import outcome
from hookstream.delivery.errors import (
    EndpointProtocolError,
    EndpointTimeout,
    EndpointTLSError,
    EndpointUnreachable,
    TransportFailure,
    TransportUsageError,
)
from hookstream.delivery.outcome import (
    GiveUp,
    GiveUpReason,
    RetryLater,
    RetryReason,
    Success,
    classify_response,
    parse_retry_after,
)

NOW = 1_800_000_000.0


def test_public_names_are_exported() -> None:
    for name in outcome.__all__:
        assert hasattr(outcome, name)
    assert {"classify_response", "Success", "RetryLater", "GiveUp", "parse_retry_after"} <= set(outcome.__all__)


def test_retry_reasons_are_exactly_the_retries_metric_label_values() -> None:
    assert {r.value for r in RetryReason} == {
        "timeout", "server_error", "connection_error", "rate_limited", "tls_error", "protocol_error"
    }
    assert str(RetryReason.RATE_LIMITED) == "rate_limited"  # usable directly as a label


# --- statuses ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_success(status: int) -> None:
    assert classify_response(status) == Success(status)


@pytest.mark.parametrize("status", [300, 301, 302, 303, 304, 307, 308])
def test_3xx_gives_up_as_redirect_because_redirects_are_never_followed(status: int) -> None:
    assert classify_response(status) == GiveUp(GiveUpReason.REDIRECT, status)


def test_410_gives_up_and_asks_for_the_endpoint_to_be_disabled() -> None:
    result = classify_response(410)
    assert result == GiveUp(GiveUpReason.GONE, 410, disable_endpoint=True)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 413, 422, 451, 499])
def test_4xx_goes_straight_to_dead_letter_by_default(status: int) -> None:
    assert classify_response(status) == GiveUp(GiveUpReason.CLIENT_ERROR, status)


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_4xx_is_retried_as_server_error_when_dead_lettering_4xx_is_off(status: int) -> None:
    result = classify_response(status, dead_letter_client_errors=False)
    assert result == RetryLater(RetryReason.SERVER_ERROR, status)


def test_410_and_429_keep_their_meaning_when_dead_lettering_4xx_is_off() -> None:
    assert classify_response(410, dead_letter_client_errors=False).reason is GiveUpReason.GONE
    assert classify_response(429, dead_letter_client_errors=False).reason is RetryReason.RATE_LIMITED


def test_408_is_retried_as_a_timeout() -> None:
    assert classify_response(408) == RetryLater(RetryReason.TIMEOUT, 408, throttle=True)


def test_429_is_rate_limited_with_its_retry_after() -> None:
    result = classify_response(429, headers={"Retry-After": "120"}, now=NOW)
    assert result == RetryLater(RetryReason.RATE_LIMITED, 429, retry_after=120.0, throttle=True)


@pytest.mark.parametrize("status", [500, 501, 505, 599])
def test_5xx_is_a_server_error_retried_without_throttle(status: int) -> None:
    assert classify_response(status) == RetryLater(RetryReason.SERVER_ERROR, status)


@pytest.mark.parametrize("status", [502, 503, 504])
def test_502_503_504_are_server_errors_that_ask_to_slow_down(status: int) -> None:
    assert classify_response(status) == RetryLater(RetryReason.SERVER_ERROR, status, throttle=True)


def test_503_carries_its_retry_after() -> None:
    assert classify_response(503, headers={"retry-after": "30"}, now=NOW).retry_after == 30.0


@pytest.mark.parametrize("status", [101, 199])
def test_a_1xx_as_final_answer_is_retried_as_a_server_error(status: int) -> None:
    assert classify_response(status).reason is RetryReason.SERVER_ERROR


@pytest.mark.parametrize("status", [0, 99, 600, 999, 1000, -200])
def test_a_status_outside_100_599_is_a_protocol_error_keeping_the_status(status: int) -> None:
    assert classify_response(status, headers={"retry-after": "9"}, now=NOW) == RetryLater(
        RetryReason.PROTOCOL_ERROR, status, 9.0
    )


@pytest.mark.parametrize("status", [True, 200.0, "200", None])
def test_a_value_that_is_not_an_http_status_is_a_bug(status) -> None:
    with pytest.raises(ValueError, match="not an HTTP status"):
        classify_response(status)


# --- Retry-After ---------------------------------------------------------------------------------------


def test_retry_after_in_seconds() -> None:
    assert parse_retry_after("  3600 ", NOW) == 3600.0


def test_retry_after_as_http_date_counts_from_now() -> None:
    when = dt.datetime.fromtimestamp(NOW + 90, dt.timezone.utc)
    assert parse_retry_after(format_datetime(when, usegmt=True), NOW) == pytest.approx(90.0)


def test_retry_after_date_in_the_past_means_now() -> None:
    when = dt.datetime.fromtimestamp(NOW - 90, dt.timezone.utc)
    assert parse_retry_after(format_datetime(when, usegmt=True), NOW) == 0.0


@pytest.mark.parametrize(
    "value",
    [None, "", "soon", "-5", "1.5", "1e3", "٣", "Mon, 99 Foo 2027 99:99:99 GMT", "12\xe9\xff", "\x00",
     "Mon, 99 Foo 99999999 99:99:99 GMT", "Sat, 01 Jan 2000 00:00:00 +9999", b"12", 12],
)
def test_unusable_retry_after_is_ignored(value) -> None:
    assert parse_retry_after(value, NOW) is None


def test_retry_after_is_read_from_case_insensitive_client_header_maps() -> None:
    for headers in (CIMultiDict({"Retry-After": "7"}), httpx.Headers({"Retry-After": "7"}), {"RETRY-AFTER": "7"}):
        assert classify_response(429, headers=headers, now=NOW).retry_after == 7.0


def test_retry_after_date_uses_the_wall_clock_when_now_is_not_given() -> None:
    far = format_datetime(dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc), usegmt=True)
    assert classify_response(429, headers={"retry-after": far}).retry_after > 365 * 86400


# --- exceptions ----------------------------------------------------------------------------------------
# Only hookstream's transport errors are classified; delivery.transport translates the client's
# own (tests/unit/test_delivery_transport_hostile.py checks that mapping).


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (EndpointTimeout("read timed out"), RetryLater(RetryReason.TIMEOUT, throttle=True)),
        (EndpointUnreachable("connection refused"), RetryLater(RetryReason.CONNECTION_ERROR)),
        (EndpointTLSError("invalid peer certificate"), RetryLater(RetryReason.TLS_ERROR)),
        (EndpointProtocolError("invalid HTTP status-code parsed"), RetryLater(RetryReason.PROTOCOL_ERROR)),
        (TransportFailure("some other failure"), RetryLater(RetryReason.CONNECTION_ERROR)),
    ],
    ids=lambda v: type(v).__name__,
)
def test_transport_failures_are_retried_with_their_reason(exc: Exception, expected: RetryLater) -> None:
    assert classify_response(exc) == expected


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bug"),
        KeyError("bug"),
        FileNotFoundError(errno.ENOENT, "ca.pem"),
        OSError(errno.EMFILE, "Too many open files"),
        asyncio.CancelledError(),
        KeyboardInterrupt(),
        TransportUsageError("client closed"),
        # the client's own exceptions and stdlib ones are not classified here: a transport that
        # let one through has a bug, and the worker must not blame the endpoint for it
        TimeoutError(),
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
        reqwest_errors.DecodeError("error decoding response", {"causes": None}),
        reqwest_errors.ConnectError("refused", {"causes": None}),
    ],
)
def test_failures_that_are_not_the_endpoints_are_raised_not_classified(exc: BaseException) -> None:
    with pytest.raises(type(exc)) as info:
        classify_response(exc)
    assert info.value is exc


def test_outcomes_are_immutable_values() -> None:
    result = classify_response(503)
    with pytest.raises(AttributeError):
        result.reason = RetryReason.TIMEOUT  # type: ignore[misc]
    assert hash(result) == hash(RetryLater(RetryReason.SERVER_ERROR, 503, throttle=True))
