"""hookstream: webhook delivery on Apache Kafka.

Three layers (docs/architecture.md): ``hookstream.core`` (settings, errors, Kafka clients, wire
formats, the database) at the bottom; the stages (``schemas``, ``subscriptions``, ``producers``,
``streams``, ``delivery``) on it; the shell (``hookstream.shell``: the CLI, the dev stack, the
bench harness) on top. The names below are the ones most programs need.
"""

from hookstream.core.errors import (
    BrokerError,
    ConfigError,
    HookstreamError,
    NotFoundError,
    TopicError,
    ValidationError,
)
from hookstream.core.settings import Settings

__all__ = [
    "BrokerError",
    "ConfigError",
    "HookstreamError",
    "NotFoundError",
    "Settings",
    "TopicError",
    "ValidationError",
]
