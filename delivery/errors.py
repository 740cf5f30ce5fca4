"""Errors the delivery core raises on purpose.

Signing errors are ``HookstreamError``s, so the CLI prints them as one line. None of their
messages, nor any ``repr`` in this package, ever contains a secret's text or key bytes: a
message names *which* input is wrong, never its value when that value could be a secret.

    HookstreamError
    └── SigningError                      anything about Standard Webhooks signatures
        ├── InvalidSecretError            (these two live in core.secrets, with Secret) a secret is not ``whsec_`` + base64 of 24-64 bytes
        │                                 (also a ``ValidationError``: it is bad user input)
        ├── NoValidSecretError            no secret given to ``sign``/``verify`` is still valid
        └── WebhookVerificationError      a received webhook failed ``verify`` (receivers catch this)
            ├── MissingHeaderError        webhook-id, webhook-timestamp or webhook-signature absent
            ├── InvalidTimestampError     webhook-timestamp is not integer unix seconds
            ├── TimestampTooOldError      older than the tolerance (a replay, or a slow queue)
            ├── TimestampTooNewError      further in the future than the tolerance (clock skew)
            └── NoMatchingSignatureError  no ``v1`` signature matches any of the secrets

Transport errors are what ``delivery.transport`` turns every failure of the HTTP client into
(``raise Mapped(message) from exc``, the one place that knows the client's own exceptions).
``delivery.outcome`` classifies ``TransportFailure``s, and nothing else, as the endpoint's:

    TransportFailure                      the endpoint's failure: retried, then dead-lettered
    ├── EndpointTimeout                   no complete answer within the request timeout  -> timeout
    ├── EndpointUnreachable               DNS, refused, reset, closed before an answer   -> connection_error
    ├── EndpointTLSError                  handshake garbage, an untrusted/expired/wrong certificate -> tls_error
    └── EndpointProtocolError             an answer that is not HTTP: bad status line or status,
                                          bad or huge headers, bad framing, a truncated body -> protocol_error
    TransportUsageError                   our own misuse of the client (a request it cannot build,
                                          a client closed under a request): never the endpoint's

Their messages are one line without the URL (a URL may carry a token in its query).
"""

from __future__ import annotations

from hookstream.core.errors import HookstreamError
# Defined with the one secret type (hookstream.core.secrets), re-exported here with the rest of the tree.
from hookstream.core.secrets import InvalidSecretError, SigningError  # noqa: F401


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


class TransportFailure(HookstreamError):
    """An attempt failed because of the endpoint or the network to it; the message says how."""


class EndpointTimeout(TransportFailure, TimeoutError):
    pass


class EndpointUnreachable(TransportFailure, ConnectionError):
    pass


class EndpointTLSError(TransportFailure):
    pass


class EndpointProtocolError(TransportFailure):
    pass


class TransportUsageError(HookstreamError):
    """The HTTP client refused what we asked of it: a bug or a shutdown, not the endpoint's doing."""
