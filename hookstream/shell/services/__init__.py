"""The service layer: what the HTTP API and the CLI do, with no HTTP or terminal in it.

A route handler (``hookstream.shell.api``) or a CLI command (``hookstream subscriptions``,
``dlq list|show|replay``, ``replay events``, ``deliveries list|show``) parses its input, calls one
function here and formats the result. Every function takes the tenant it acts for (keyword
``tenant_id``) and reaches data only through the stages' tenant-scoped functions, so another
tenant's id is "not found" (404 in the API), never "forbidden". Operators' CLI commands may
leave the tenant out: they pass ``ANY_TENANT`` (whichever tenant owns the id; every tenant's in
a listing), which the API never does. Dead-letter operations are for operators (admin keys) and
may span every tenant.

    Services            one per process: the settings, the store and its engine, shared
    ├── endpoints       EndpointService: subscriptions (create ... recover, stats)
    ├── messages        MessageService: one event to one endpoint, its attempts, resend
    └── dlq             DeadLetterService: list and replay dead letters
"""

from hookstream.shell.services.dlq import DeadLetterService
from hookstream.shell.services.endpoints import ANY_TENANT, EndpointService
from hookstream.shell.services.errors import ConflictError
from hookstream.shell.services.messages import MessageService
from hookstream.shell.services.pages import MAX_LIMIT, Page
from hookstream.shell.services.wiring import Services

__all__ = ["ANY_TENANT", "MAX_LIMIT", "ConflictError", "DeadLetterService", "EndpointService", "MessageService", "Page", "Services"]
