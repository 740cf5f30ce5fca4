"""Errors hookstream raises on purpose.

Every error a user can cause (bad input, a missing tool, a broker that will not start) is a
``HookstreamError`` whose message is one line naming what is wrong and, where there is one,
the way out. The CLI prints that line and exits non-zero; it never shows a traceback for these.

    HookstreamError
    ├── ConfigError          a HOOKSTREAM_* variable or option has a value we cannot use
    ├── BrokerError          the local Kafka broker cannot be fetched, started, reached or stopped
    ├── TopicError           topics cannot be created, or exist with a different configuration
    ├── ValidationError      an event, subscription or other input breaks a rule (names the field)
    └── NotFoundError        an id names nothing (subscription, dead letter, ...)
"""

from __future__ import annotations


class HookstreamError(Exception):
    """Base of every error hookstream raises on purpose. ``str(err)`` is the user-facing line."""

    exit_code = 1


class ConfigError(HookstreamError):
    exit_code = 2


class BrokerError(HookstreamError):
    pass


class TopicError(HookstreamError):
    pass


class ValidationError(HookstreamError):
    exit_code = 2


class NotFoundError(HookstreamError):
    exit_code = 3
