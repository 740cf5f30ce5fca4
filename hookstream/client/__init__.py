"""hookstream.client: a small typed client for hookstream's HTTP API (httpx; sync and asyncio).

    from hookstream.client import Hookstream

    with Hookstream("http://127.0.0.1:8080", "hsk_...") as hs:
        made = hs.endpoints.create("https://hooks.acme.example/in", ["payment.*"])
        print(made.secret)                      # shown this once
        for message in hs.messages.list(endpoint_id=made.endpoint.id, status="failed").data:
            hs.messages.resend(message.id)

``AsyncHookstream`` has the same resources (``events``, ``event_types``, ``endpoints``, ``messages``, ``dlq``)
with coroutines. A problem answer raises ``HookstreamAPIError`` (status, code, detail, field).
"""

from hookstream.client._client import TENANT_HEADER, AsyncHookstream, Hookstream
from hookstream.client._errors import HookstreamAPIError
from hookstream.client._models import Attempt, DeadLetter, Endpoint, EndpointWithSecret, Message, Page

__all__ = [
    "TENANT_HEADER",
    "AsyncHookstream",
    "Attempt",
    "DeadLetter",
    "Endpoint",
    "EndpointWithSecret",
    "Hookstream",
    "HookstreamAPIError",
    "Message",
    "Page",
]
