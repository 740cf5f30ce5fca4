"""What one delivery attempt came to, as a typed value: ``Success``, ``RetryLater`` or ``GiveUp``.

``classify_response`` is the one place that reads an HTTP status (or the exception the attempt
raised) and decides. Everything after it (retry scheduling, dead-lettering, the circuit
breaker, metrics) switches on the value and never looks at a status code again.

Rules, after the practice of Svix and Stripe:

- Success is 2xx only.
- 3xx is a failure and is never followed (a redirect can point anywhere, SSRF included): give up.
- 408, 429 and 5xx, timeouts and connection failures are the receiver's trouble: retry later,
  honouring ``Retry-After`` (the schedule bounds it). 429, 502, 503, 504 and timeouts also mark
  ``throttle``: the receiver asked us to slow down, so the schedule waits at least a minimum.
- 410 Gone gives up and asks for the endpoint to be disabled: the receiver said so.
- Other 4xx give up at once (the same request will fail the same way) unless
  ``dead_letter_client_errors=False``, when they are retried like a server error.
- A status outside 100-599 (hyper passes 600-999 on) is no HTTP answer: ``protocol_error``.
- A failed attempt (``delivery.errors.TransportFailure``, raised by ``delivery.transport``, the
  one place that knows the HTTP client's exceptions): ``EndpointTimeout`` -> ``timeout`` (with
  ``throttle``), ``EndpointUnreachable`` -> ``connection_error``, ``EndpointTLSError`` ->
  ``tls_error``, ``EndpointProtocolError`` -> ``protocol_error``; all retried, as the endpoint
  may be fixed (a certificate renewed, a proxy repaired) before the schedule runs out.

Retry reasons are exactly the ``reason`` label values of the retries metric: ``timeout``,
``server_error``, ``connection_error``, ``rate_limited``, ``tls_error``, ``protocol_error``. A
retried 4xx (flag off) is counted as ``server_error``: the receiving server answered with an
error; ``status`` keeps the code.

Any other exception (a bug, cancellation, an infrastructure fault) is raised again, never
classified: it must not count against the endpoint.
"""

from __future__ import annotations

import dataclasses
import email.utils
import enum
import math
import time
from collections.abc import Mapping

from hookstream.delivery.errors import EndpointProtocolError, EndpointTimeout, EndpointTLSError, TransportFailure

__all__ = [
    "GiveUp",
    "GiveUpReason",
    "Outcome",
    "RetryLater",
    "RetryReason",
    "Success",
    "classify_response",
    "parse_retry_after",
]


class RetryReason(enum.StrEnum):
    TIMEOUT = "timeout"
    SERVER_ERROR = "server_error"
    CONNECTION_ERROR = "connection_error"
    RATE_LIMITED = "rate_limited"
    TLS_ERROR = "tls_error"
    PROTOCOL_ERROR = "protocol_error"


class GiveUpReason(enum.StrEnum):
    CLIENT_ERROR = "client_error"
    REDIRECT = "redirect"
    GONE = "gone"


@dataclasses.dataclass(frozen=True, slots=True)
class Success:
    status: int


@dataclasses.dataclass(frozen=True, slots=True)
class RetryLater:
    """Try again later. ``retry_after`` is the receiver's wish in seconds from now, if it sent one."""

    reason: RetryReason
    status: int | None = None
    retry_after: float | None = None
    throttle: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class GiveUp:
    """Stop retrying: dead-letter the record. ``disable_endpoint`` when the receiver asked (410)."""

    reason: GiveUpReason
    status: int | None = None
    disable_endpoint: bool = False


Outcome = Success | RetryLater | GiveUp

# Statuses with which a receiver says "slow down" rather than "broken".
_THROTTLE_STATUSES = frozenset({429, 502, 503, 504})

def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date; None if unusable.

    A date in the past means "now" (0). Garbage is ignored rather than trusted: the schedule's
    own delay applies then.
    """
    if not isinstance(value, str):
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)  # a huge number is inf: the schedule caps it
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:  # "-0000" parses naive; HTTP dates are always GMT
            return None
        seconds = when.timestamp() - now
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _classify_status(
    status: int,
    retry_after: float | None,
    dead_letter_client_errors: bool,
) -> Outcome:
    if not 100 <= status <= 599:
        return RetryLater(RetryReason.PROTOCOL_ERROR, status, retry_after)
    if 200 <= status < 300:
        return Success(status)
    if 300 <= status < 400:
        return GiveUp(GiveUpReason.REDIRECT, status)
    if status == 410:
        return GiveUp(GiveUpReason.GONE, status, disable_endpoint=True)
    if status == 429:
        return RetryLater(RetryReason.RATE_LIMITED, status, retry_after, throttle=True)
    if status == 408:
        return RetryLater(RetryReason.TIMEOUT, status, retry_after, throttle=True)
    if 400 <= status < 500 and dead_letter_client_errors:
        return GiveUp(GiveUpReason.CLIENT_ERROR, status)
    # 5xx, a retried 4xx, and a 1xx as final answer: the receiver's trouble.
    return RetryLater(RetryReason.SERVER_ERROR, status, retry_after, throttle=status in _THROTTLE_STATUSES)


def _classify_exception(exc: BaseException) -> Outcome:
    if not isinstance(exc, TransportFailure):
        raise exc
    if isinstance(exc, EndpointTimeout):
        return RetryLater(RetryReason.TIMEOUT, throttle=True)
    if isinstance(exc, EndpointTLSError):
        return RetryLater(RetryReason.TLS_ERROR)
    if isinstance(exc, EndpointProtocolError):
        return RetryLater(RetryReason.PROTOCOL_ERROR)
    return RetryLater(RetryReason.CONNECTION_ERROR)  # EndpointUnreachable, or a failure not told apart


def classify_response(
    result: int | BaseException,
    *,
    headers: Mapping[str, str] | None = None,
    now: float | None = None,
    dead_letter_client_errors: bool = True,
) -> Outcome:
    """An HTTP status (with its response headers) or the exception an attempt raised -> ``Outcome``.

    ``now`` (unix seconds, default the wall clock) turns a ``Retry-After`` HTTP date into seconds.
    """
    if isinstance(result, BaseException):
        return _classify_exception(result)
    if isinstance(result, bool) or not isinstance(result, int):
        raise ValueError(f"not an HTTP status: {result!r}")
    retry_after = None
    if headers is not None:
        retry_after = parse_retry_after(_header(headers, "retry-after"), time.time() if now is None else now)
    return _classify_status(result, retry_after, dead_letter_client_errors)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that works for plain dicts as well as the clients' header maps."""
    value = headers.get(name)
    if value is not None:
        return value
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
