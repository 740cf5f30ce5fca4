"""What the API's routes share: settings, the database engine, the stores, the publisher.

``create_app(settings, **injected)`` makes one ``ApiContext`` (``app.state.ctx``; the dependency
``context`` hands it to a route). Whatever is not injected is made on first use, so building the
app (e.g. to print its OpenAPI document) needs neither broker nor database; ``hookstream api``
calls ``open()`` before serving so a bad database URL fails at start, in one line. Anything else
injected (a route module's own store, a fake clock) is kept in ``extra``.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import Request
from sqlalchemy import Engine

from hookstream.core.settings import Settings
from hookstream.shell.api.keys import ApiKeyStore, KeyCache
from hookstream.shell.api.ratelimit import RateLimiter


# The API's producer waits at most 1 ms for more records to fill a batch (the pipeline's default
# is 5 ms): each single-event request waits for its acknowledgement, so the linger is paid on
# every answer, while a batch request enqueues its events at once and fills batches anyway.
PRODUCER_OVERRIDES = {"linger.ms": 1}


class ApiContext:
    def __init__(self, settings: Settings, *, engine: Engine | None = None, publisher: Any = None,
                 key_store: ApiKeyStore | None = None, limiter: RateLimiter | None = None, **extra: Any) -> None:
        self.settings = settings
        self.limiter = limiter or RateLimiter(settings.api_rate_limit, settings.api_rate_burst)
        self.key_cache = KeyCache()
        # failed authentications per client address: a minute's worth of the limit at once, then the limit per minute
        failures = settings.api_auth_failure_limit
        self.auth_failures = RateLimiter(failures / 60.0, failures) if failures else RateLimiter(0)
        self.extra = extra
        self._engine = engine
        self._publisher = publisher
        self._key_store = key_store
        self._owned: list[Any] = []  # what this context made, and so closes
        self._lock = threading.Lock()

    def open(self) -> "ApiContext":
        """Make the engine (migrating the database) now rather than on the first request."""
        _ = self.engine
        return self

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    from hookstream.core.db import open_database

                    self._engine = open_database(self.settings)
                    self._owned.append(self._engine)
        return self._engine

    @property
    def key_store(self) -> ApiKeyStore:
        if self._key_store is None:
            self._key_store = ApiKeyStore(self.engine)
        return self._key_store

    @property
    def admin_client(self) -> Any:
        """A Kafka admin client (readiness checks), quiet: /readyz reports a broker that is down."""
        if self.extra.get("admin_client") is None:
            from hookstream.core.kafka import make_admin

            self.extra["admin_client"] = make_admin(self.settings, log_level=0)
        return self.extra["admin_client"]

    @property
    def publisher(self) -> Any:
        """The ``AsyncPublisher`` (made on first use, on the serving loop's thread)."""
        if self._publisher is None:
            from hookstream.producers import AsyncPublisher

            self._publisher = AsyncPublisher(self.settings, **PRODUCER_OVERRIDES)
            self._owned.append(self._publisher)
        return self._publisher

    async def close(self) -> None:
        """Flush and close what this context made (not what was injected)."""
        owned, self._owned = self._owned, []
        for thing in reversed(owned):
            if isinstance(thing, Engine):
                thing.dispose()
            else:
                try:
                    await thing.close(timeout=10.0)
                except Exception:  # noqa: BLE001 - closing on the way out: report, do not mask
                    import logging

                    logging.getLogger("hookstream.api").exception("closing %s failed", type(thing).__name__)


async def context(request: Request) -> ApiContext:
    """FastAPI dependency: the app's ``ApiContext`` (async: FastAPI runs a plain ``def`` dependency
    on its thread pool, a thread hop per request for nothing)."""
    return request.app.state.ctx
