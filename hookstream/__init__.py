"""hookstream's shared package: settings, Kafka client settings, topics, the local broker, the CLI."""

from hookstream.errors import (
    BrokerError,
    ConfigError,
    HookstreamError,
    NotFoundError,
    TopicError,
    ValidationError,
)
from hookstream.settings import Settings

__all__ = [
    "BrokerError",
    "ConfigError",
    "HookstreamError",
    "NotFoundError",
    "Settings",
    "TopicError",
    "ValidationError",
]
