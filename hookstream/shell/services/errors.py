"""The service layer's own error (the others are ``hookstream.core.errors``')."""

from __future__ import annotations

from hookstream.core.errors import HookstreamError


class ConflictError(HookstreamError):
    """The request is valid but the resource's state forbids it now (a disabled endpoint asked
    to receive a test message, say): 409 in the API."""

    exit_code = 1
