"""Standard Webhooks signing for senders and verification for receivers, on the stdlib alone.

Every delivery carries three headers: ``webhook-id`` (stable across retries: the receiver's
dedup key), ``webhook-timestamp`` (unix seconds of this attempt) and ``webhook-signature``, a
space-separated list of ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` entries, one
per secret still valid, so an endpoint can rotate its secret without a gap. The body signed is
the exact bytes sent: signing a re-serialised copy is the classic way to break every receiver.

``verify`` is what a receiver runs (our tests, and anyone who wants a reference): it compares in
constant time, rejects stale or future timestamps, and turns every malformed input into its own
``WebhookVerificationError`` subclass instead of a ``ValueError`` from somewhere inside.
Secrets never reach a message, a ``repr`` or a log line: ``Secret`` (``hookstream.core.secrets``,
the one secret type, re-exported here) hides its key everywhere except ``reveal()``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import importlib.metadata
import re
import time
from collections.abc import Iterable, Mapping

from hookstream.core.secrets import Secret
from hookstream.delivery.errors import (
    InvalidTimestampError,
    MissingHeaderError,
    NoMatchingSignatureError,
    NoValidSecretError,
    TimestampTooNewError,
    TimestampTooOldError,
)
from hookstream.core.errors import ValidationError

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "Secret",
    "build_headers",
    "sign",
    "user_agent",
    "verify",
]

DEFAULT_TOLERANCE_SECONDS = 300.0

# Visible ASCII only: the id goes into a header (no CR/LF injection) and is the receiver's
# dedup key, so it must survive every proxy byte for byte.
_MSG_ID = re.compile(r"[\x21-\x7e]{1,255}")
# Integer unix seconds, as the spec says; 15 digits is far beyond any real clock.
_TIMESTAMP = re.compile(r"[0-9]{1,15}")


def _as_secrets(secrets: Secret | str | Iterable[Secret | str]) -> list[Secret]:
    if isinstance(secrets, (Secret, str)):
        secrets = [secrets]
    return [s if isinstance(s, Secret) else Secret.parse(s) for s in secrets]


def _valid_secrets(secrets: Secret | str | Iterable[Secret | str], when: float) -> list[Secret]:
    """The secrets still valid at ``when``; none at all is a configuration error, said so."""
    valid = [s for s in _as_secrets(secrets) if s.valid_at(when)]
    if not valid:
        raise NoValidSecretError("no webhook secret is valid at this time (all given have expired, or none was given)")
    return valid


def _signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode("utf-8") + body


def _check_message(msg_id: str, timestamp: int, body: bytes) -> None:
    if not isinstance(msg_id, str) or not _MSG_ID.fullmatch(msg_id):
        raise ValidationError("webhook-id must be 1-255 visible ASCII characters (no spaces)")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValidationError("webhook-timestamp must be a non-negative integer of unix seconds")
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError("body must be the exact bytes sent, not a str or an object")


def sign(
    msg_id: str,
    timestamp: int,
    body: bytes,
    secrets: Secret | str | Iterable[Secret | str],
) -> str:
    """The ``webhook-signature`` value: ``v1,<base64>`` per secret valid at ``timestamp``."""
    _check_message(msg_id, timestamp, body)
    return _signature_value(_signed_content(msg_id, timestamp, bytes(body)), _as_secrets(secrets), timestamp)


def _signature_value(content: bytes, keys: list[Secret], when: int) -> str:
    """``v1,<base64>`` per key valid at ``when``, space separated (``NoValidSecretError`` if none)."""
    signatures = [
        "v1," + binascii.b2a_base64(key.mac(content), newline=False).decode("ascii")
        for key in keys
        if key.valid_at(when)
    ]
    if not signatures:
        raise NoValidSecretError("no webhook secret is valid at this time (all given have expired, or none was given)")
    return " ".join(signatures)


@functools.cache
def user_agent() -> str:
    """``hookstream/<version>``, so receivers can tell us apart and report problems."""
    try:
        version = importlib.metadata.version("hookstream")
    except importlib.metadata.PackageNotFoundError:  # running from a bare checkout
        version = "0+unknown"
    return f"hookstream/{version}"


def build_headers(
    msg_id: str,
    timestamp: int,
    body: bytes,
    secrets: Secret | str | Iterable[Secret | str],
) -> dict[str, str]:
    """Every header a delivery attempt sends, signature included."""
    return _headers(msg_id, timestamp, sign(msg_id, timestamp, body, secrets))


def _headers(msg_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": user_agent(),
    }


def delivery_headers(msg_id: str, timestamp: int, body: bytes, keys: list[Secret]) -> dict[str, str]:
    """``build_headers`` for the delivery worker's hot path, the same headers byte for byte (not
    in ``__all__``: receivers have no use for it).

    The worker made ``timestamp`` (an ``int`` from its clock) and ``body`` (the ``bytes`` it
    built) itself, so only ``msg_id`` is checked (it comes off the wire and goes into a header);
    the rest of ``sign``'s input checks are skipped. Raises ``NoValidSecretError`` as ``sign`` does."""
    if not _MSG_ID.fullmatch(msg_id):
        raise ValidationError("webhook-id must be 1-255 visible ASCII characters (no spaces)")
    return _headers(msg_id, timestamp, _signature_value(_signed_content(msg_id, timestamp, body), keys, timestamp))


def _required_header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise MissingHeaderError(f"the {name} header is missing or empty")
    return value


def _check_timestamp(text: str, now: float, tolerance: float) -> int:
    if not _TIMESTAMP.fullmatch(text):
        raise InvalidTimestampError(f"webhook-timestamp {text[:32]!r} is not integer unix seconds")
    timestamp = int(text)
    if now - timestamp > tolerance:
        raise TimestampTooOldError(f"webhook-timestamp is {now - timestamp:.0f}s old, more than the {tolerance:.0f}s allowed")
    if timestamp - now > tolerance:
        raise TimestampTooNewError(
            f"webhook-timestamp is {timestamp - now:.0f}s in the future, more than the {tolerance:.0f}s allowed"
        )
    return timestamp


def _v1_signatures(header: str) -> list[bytes]:
    """Decoded ``v1`` entries; other versions and undecodable entries are skipped, not fatal."""
    found = []
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def verify(
    body: bytes | str,
    headers: Mapping[str, str],
    secrets: Secret | str | Iterable[Secret | str],
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Return if the webhook is authentic and fresh; otherwise raise a ``WebhookVerificationError``.

    Header names are matched case-insensitively. Any ``v1`` entry matching any valid secret is
    enough: that is what lets a sender sign with old and new secrets during a rotation.
    """
    now = time.time() if now is None else now
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = _required_header(lower, "webhook-id")
    timestamp_text = _required_header(lower, "webhook-timestamp")
    signature_header = _required_header(lower, "webhook-signature")
    timestamp = _check_timestamp(timestamp_text, now, tolerance)
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    content = _signed_content(msg_id, timestamp, raw)
    expected = [secret.mac(content) for secret in _valid_secrets(secrets, now)]
    for candidate in _v1_signatures(signature_header):
        if any(hmac.compare_digest(candidate, mac) for mac in expected):
            return
    raise NoMatchingSignatureError("no webhook-signature entry matches the body with any valid secret")
