"""Webhook signing secrets: one type, ``Secret``, from the day it is made to every HMAC it signs.

The format is Standard Webhooks': ``whsec_`` + standard base64 (``+/``) of 24-64 random bytes;
the HMAC key is the decoded bytes. ``Secret.parse`` is the one reader of that text, for every
door a secret comes in by (``subscriptions add --secret``, ``rotate-secret``, the store and the
subscriptions topic, ``hookstream receive --secret``):

- surrounding whitespace (a copy-paste's newline) is ignored;
- the ``=`` padding may be left out (some senders print secrets without it) but, when present,
  must be exactly right; anything else outside the base64 alphabet is refused;
- what ``reveal()`` gives back, and so what is stored, sealed and printed, is always the
  canonical padded form the reference libraries decode (Python's ``base64.b64decode``, Go's
  ``StdEncoding``).

A ``Secret`` never shows its key: ``repr``/``str`` are redacted, ``masked`` is ``whsec_MfKQ…``,
and an ``InvalidSecretError`` names what is wrong with a secret, never the secret. ``reveal()``
is the one way out, for showing a new secret to its owner once and for sealing it at rest.

``expires_at`` marks a secret rotated out and kept only for its grace window: an aware
``datetime`` (unix seconds are accepted too). ``valid_at`` takes either, so the delivery hot
path compares integer timestamps without making a ``datetime`` per message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _random
from datetime import UTC, datetime

from hookstream.core.errors import HookstreamError, ValidationError

__all__ = [
    "GENERATED_BYTES",
    "MAX_BYTES",
    "MIN_BYTES",
    "PREFIX",
    "InvalidSecretError",
    "Secret",
    "SigningError",
    "mask",
]

PREFIX = "whsec_"
MIN_BYTES, MAX_BYTES = 24, 64
GENERATED_BYTES = 32  # as Svix issues them
_SHOWN_CHARS = 4  # of the base64 part: enough to tell secrets apart, 24 bits of 192+
RULE = f"a secret must be {PREFIX} followed by standard base64 of {MIN_BYTES}-{MAX_BYTES} bytes"


class SigningError(HookstreamError):
    """Base of every signing and verification error (``hookstream.delivery.errors`` draws the tree)."""


class InvalidSecretError(SigningError, ValidationError):
    """A webhook secret cannot be used. The message says why, never what the secret was."""


def _refuse(why: str) -> InvalidSecretError:
    return InvalidSecretError(f"secret: {RULE} ({why})")


def _decode(body: str) -> bytes:
    """The key bytes of the base64 part; padding optional, exact when given; ``from None``
    everywhere so no decoder message (which could quote the input) travels with the error."""
    data = body.rstrip("=")
    padding = len(body) - len(data)
    if padding and padding != -len(data) % 4:
        raise _refuse(f"the part after {PREFIX} is not valid base64: wrong padding")
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _refuse(f"the part after {PREFIX} is not valid base64") from None


def _unix(when: datetime | float | None) -> float | None:
    if when is None or isinstance(when, datetime):
        return None if when is None else when.timestamp()
    return float(when)


class Secret:
    """A webhook signing key (see the module docstring). Immutable; compared in constant time."""

    __slots__ = ("_key", "_expires_at", "_expires_unix", "_keyed")

    def __init__(self, key: bytes, *, expires_at: datetime | float | None = None) -> None:
        if not isinstance(key, (bytes, bytearray)):
            raise _refuse("the key is not bytes")
        if not MIN_BYTES <= len(key) <= MAX_BYTES:
            raise _refuse(f"it decodes to {len(key)} bytes")
        if isinstance(expires_at, datetime) and expires_at.tzinfo is None:
            raise ValueError("expires_at must be an aware datetime (UTC)")
        self._key = bytes(key)
        self._expires_unix = _unix(expires_at)
        self._expires_at = (
            expires_at if not isinstance(expires_at, (int, float)) else datetime.fromtimestamp(expires_at, UTC)
        )
        self._keyed = hmac.new(self._key, digestmod=hashlib.sha256)  # copied per message: no key set-up each time

    @classmethod
    def parse(cls, text: str, *, expires_at: datetime | float | None = None) -> Secret:
        """``whsec_`` + base64 -> ``Secret``; ``InvalidSecretError`` saying what is wrong, never the text."""
        if not isinstance(text, str):
            raise _refuse("it is not a string")
        text = text.strip()
        if not text.startswith(PREFIX):
            raise _refuse(f"it does not start with {PREFIX}")
        return cls(_decode(text[len(PREFIX) :]), expires_at=expires_at)

    @classmethod
    def generate(cls, nbytes: int = GENERATED_BYTES) -> Secret:
        """A fresh random secret, for a new endpoint or a rotation."""
        return cls(_random.token_bytes(nbytes))

    def expiring(self, expires_at: datetime | float | None) -> Secret:
        """The same key with another expiry (a secret rotated out keeps signing until then)."""
        return Secret(self._key, expires_at=expires_at)

    @property
    def expires_at(self) -> datetime | None:
        return self._expires_at

    @property
    def masked(self) -> str:
        return mask(self.reveal())

    def reveal(self) -> str:
        """The canonical ``whsec_...`` text: the one way out (shown once to its owner; sealed at rest)."""
        return PREFIX + base64.b64encode(self._key).decode("ascii")

    def valid_at(self, when: datetime | float) -> bool:
        """Still signing at ``when`` (a ``datetime`` or unix seconds): not rotated out, or within its grace."""
        if self._expires_unix is None:
            return True
        return (when.timestamp() if isinstance(when, datetime) else when) < self._expires_unix

    def mac(self, content: bytes) -> bytes:
        """HMAC-SHA256 of ``content`` under this key."""
        h = self._keyed.copy()
        h.update(content)
        return h.digest()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._key, other._key) and self._expires_unix == other._expires_unix

    __hash__ = None  # type: ignore[assignment]  # secrets are values to compare, not dict keys

    def __repr__(self) -> str:
        expiry = "" if self._expires_at is None else f", expires_at={self._expires_at.isoformat()}"
        return f"Secret({self.masked} <redacted>{expiry})"

    __str__ = __repr__


def mask(secret: str) -> str:
    """``whsec_MfKQ…``: the first few characters of a secret's text only, never the whole secret
    (any text: something that is not a secret masks to ``whsec_****``)."""
    if not isinstance(secret, str) or not secret.startswith(PREFIX):
        return PREFIX + "****"
    return secret[: len(PREFIX) + _SHOWN_CHARS] + "…"
