"""Signing secrets: ``whsec_`` + base64 of random bytes (the Standard Webhooks format).

A secret is shown to its owner once, when it is made (``add``, ``rotate-secret``); everywhere
else it appears masked (``whsec_MfKQ…``). ``SigningSecret`` masks itself in ``repr`` so a
secret cannot leak through a log line or a traceback by accident.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import secrets as _random
from datetime import datetime

from hookstream.core.errors import ValidationError

PREFIX = "whsec_"
GENERATED_BYTES = 32
MIN_BYTES, MAX_BYTES = 24, 64
_SHOWN_CHARS = 4  # of the base64 part: enough to tell secrets apart, 24 bits of 192+


def generate_secret() -> str:
    return PREFIX + base64.b64encode(_random.token_bytes(GENERATED_BYTES)).decode("ascii")


def validate_secret(secret: str) -> str:
    """Return ``secret`` when it is ``whsec_`` + base64 of 24-64 bytes; the error never echoes it."""
    rule = f"a secret must be {PREFIX} followed by standard base64 of {MIN_BYTES}-{MAX_BYTES} bytes"
    if not isinstance(secret, str) or not secret.startswith(PREFIX):
        raise ValidationError(f"secret: {rule} (it does not start with {PREFIX})")
    try:
        key = base64.b64decode(secret[len(PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"secret: {rule} (the part after {PREFIX} is not valid base64)") from None
    if not MIN_BYTES <= len(key) <= MAX_BYTES:
        raise ValidationError(f"secret: {rule} (it decodes to {len(key)} bytes)")
    return secret


def mask(secret: str) -> str:
    """``whsec_MfKQ…``: the first few characters only, never the whole secret."""
    if not isinstance(secret, str) or not secret.startswith(PREFIX):
        return PREFIX + "****"
    return secret[: len(PREFIX) + _SHOWN_CHARS] + "…"


@dataclasses.dataclass(frozen=True)
class SigningSecret:
    """One secret a subscription signs with; ``expires_at`` is set while it is being rotated out."""

    value: str = dataclasses.field(repr=False)
    expires_at: datetime | None = None

    @property
    def key(self) -> bytes:
        """The HMAC key: the decoded bytes after ``whsec_``."""
        return base64.b64decode(self.value[len(PREFIX):])

    @property
    def masked(self) -> str:
        return mask(self.value)

    def valid_at(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at

    def __repr__(self) -> str:
        return f"SigningSecret({self.masked}, expires_at={self.expires_at!r})"

    __str__ = __repr__
