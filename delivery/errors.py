"""Errors the delivery core raises on purpose.

Signing errors are ``HookstreamError``s, so the CLI prints them as one line. None of their
messages, nor any ``repr`` in this package, ever contains a secret's text or key bytes: a
message names *which* input is wrong, never its value when that value could be a secret.

    HookstreamError
    └── SigningError                      anything about Standard Webhooks signatures
        ├── InvalidSecretError            a secret is not ``whsec_`` + base64 of 24-64 bytes
        │                                 (also a ``ValidationError``: it is bad user input)
        ├── NoValidSecretError            no secret given to ``sign``/``verify`` is still valid
        └── WebhookVerificationError      a received webhook failed ``verify`` (receivers catch this)
            ├── MissingHeaderError        webhook-id, webhook-timestamp or webhook-signature absent
            ├── InvalidTimestampError     webhook-timestamp is not integer unix seconds
            ├── TimestampTooOldError      older than the tolerance (a replay, or a slow queue)
            ├── TimestampTooNewError      further in the future than the tolerance (clock skew)
            └── NoMatchingSignatureError  no ``v1`` signature matches any of the secrets
"""

from __future__ import annotations

from hookstream.errors import HookstreamError, ValidationError


class SigningError(HookstreamError):
    """Base of every signing and verification error."""


class InvalidSecretError(SigningError, ValidationError):
    """A webhook secret cannot be used. The message says why, never what the secret was."""


class NoValidSecretError(SigningError):
    """``sign`` or ``verify`` was given no secret still valid at that time: a configuration error."""


class WebhookVerificationError(SigningError):
    """A received webhook is not authentic or not fresh. Receivers answer it with 400/401."""


class MissingHeaderError(WebhookVerificationError):
    pass


class InvalidTimestampError(WebhookVerificationError):
    pass


class TimestampTooOldError(WebhookVerificationError):
    pass


class TimestampTooNewError(WebhookVerificationError):
    pass


class NoMatchingSignatureError(WebhookVerificationError):
    pass
