"""``Services``: the service layer wired once per process (one store, one engine)."""

from __future__ import annotations

import dataclasses

from hookstream.core.settings import Settings
from hookstream.subscriptions import SubscriptionStore
from hookstream.shell.services.dlq import DeadLetterService
from hookstream.shell.services.endpoints import EndpointService
from hookstream.shell.services.messages import MessageService


@dataclasses.dataclass
class Services:
    settings: Settings
    store: SubscriptionStore
    endpoints: EndpointService
    messages: MessageService
    dlq: DeadLetterService

    @classmethod
    def open(cls, settings: Settings, *, store: SubscriptionStore | None = None, **overrides) -> "Services":
        """Everything on ``settings``' database and broker; ``overrides`` replace a service
        (``endpoints=``, ``messages=``, ``dlq=``), for tests."""
        store = store or SubscriptionStore.open(settings)
        return cls(
            settings=settings,
            store=store,
            endpoints=overrides.pop("endpoints", None) or EndpointService(settings, store),
            messages=overrides.pop("messages", None) or MessageService(settings, store),
            dlq=overrides.pop("dlq", None) or DeadLetterService(settings),
        )

    def close(self) -> None:
        self.store.engine.dispose()
