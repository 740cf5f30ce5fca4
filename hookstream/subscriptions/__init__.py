"""Subscriptions: where each tenant's webhooks go, kept in the store and mirrored on a compacted topic.

For the stream and delivery workers: ``SubscriptionTable`` (+ ``follow``/``FollowerThread``)
holds the current table from the topic; ``matches`` selects by event type;
``Subscription.signing_secrets()`` gives the secrets to sign with (``hookstream.core.secrets.Secret``); ``check_address`` must be
applied to the address a delivery actually connects to (DNS rebinding).
"""

from hookstream.subscriptions.filters import KNOWN_EVENT_TYPES, matches, parse_filters, validate_filters
from hookstream.subscriptions.models import Status, Subscription
from hookstream.subscriptions.store import SubscriptionStore, open_engine
from hookstream.core.wire import WireFormatError
from hookstream.subscriptions.topic import PublishReport, decode, encode, publish_pending, sync, to_wire
from hookstream.subscriptions.urls import CheckedURL, Reason, UnsafeURLError, check_address, check_url
from hookstream.subscriptions.view import FollowerThread, SubscriptionTable, follow, load_table

__all__ = [
    "KNOWN_EVENT_TYPES",
    "CheckedURL",
    "FollowerThread",
    "PublishReport",
    "Reason",
    "Status",
    "Subscription",
    "SubscriptionStore",
    "SubscriptionTable",
    "UnsafeURLError",
    "WireFormatError",
    "check_address",
    "check_url",
    "decode",
    "encode",
    "follow",
    "load_table",
    "matches",
    "open_engine",
    "parse_filters",
    "publish_pending",
    "sync",
    "to_wire",
    "validate_filters",
]
