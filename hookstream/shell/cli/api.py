"""``hookstream api``: serve the HTTP API with uvicorn; ``hookstream api openapi``: print its
OpenAPI document (``hookstream api openapi > docs/openapi.json`` regenerates the committed one).

Listens on ``HOOKSTREAM_API_HOST`` (default 127.0.0.1) : ``HOOKSTREAM_API_PORT`` (default 8080;
0 picks a free port). Once listening it prints ``listening on http://HOST:PORT`` on stderr.
"""

from __future__ import annotations

import json
import sys

import typer

from hookstream.core.settings import Settings
from hookstream.shell.cli._context import settings_of

api_app = typer.Typer(help="The HTTP API: `hookstream api` serves it.", invoke_without_command=True)


@api_app.callback()
def serve(
    ctx: typer.Context,
    host: str = typer.Option(None, "--host", help="Address to listen on (default HOOKSTREAM_API_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, "--port", help="Port (default HOOKSTREAM_API_PORT or 8080; 0: a free one)."),
) -> None:
    """Serve the HTTP API until interrupted."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from hookstream.shell.api.app import create_app

    settings = settings_of(ctx)
    app = create_app(settings)
    app.state.ctx.open()  # migrate the database now: a bad URL fails here, in one line
    from hookstream.shell.api.server import protocol

    config = uvicorn.Config(
        app,
        host=host or settings.api_host,
        port=settings.api_port if port is None else port,
        log_level="info",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=15,
        # HOOKSTREAM_API_*: connections and requests at once (more: 503), the listen backlog; idle
        # keep-alive connections stay open longer than uvicorn's 5 s by default, so a client's
        # pooled connection is rarely closed under a request it is sending (most proxies use 60 s)
        limit_concurrency=settings.api_limit_concurrency,
        backlog=settings.api_backlog,
        timeout_keep_alive=settings.api_keep_alive_seconds,  # type: ignore[arg-type] - seconds, a float is fine
        # httptools, with the header timeout and size limit uvicorn has only for h11 (server.py)
        http=protocol(settings.api_header_timeout_seconds, settings.api_max_header_bytes),
    )
    server = _server_class()(config)
    server.run()
    if not server.started:
        raise typer.Exit(1)


def _server_class():
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started:
                _settle_heap()
            if self.started:  # the real port, also when 0 asked for a free one
                for server in self.servers:
                    for sock in server.sockets:
                        host, port = sock.getsockname()[:2]
                        host = f"[{host}]" if ":" in host else host
                        print(f"listening on http://{host}:{port}", file=sys.stderr, flush=True)

    return Server


def _settle_heap() -> None:
    """Once serving: move everything made so far (FastAPI's routes and models, SQLAlchemy's
    tables, the schemas) out of the collector's sight, and collect the young generation less
    often. A full collection otherwise walks that whole heap, a pause every request waiting at
    that moment pays for (it set the ingest p99); what a request makes is mostly freed by
    reference counting, the collector only finds cycles."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


GC_THRESHOLD = 20_000  # allocations between two young-generation collections (CPython's default: 700)


def openapi_document(settings: Settings | None = None) -> str:
    """The OpenAPI document as committed in docs/openapi.json (stable key order, final newline)."""
    from hookstream.shell.api.app import create_app

    return json.dumps(create_app(settings or Settings()).openapi(), indent=2, ensure_ascii=False) + "\n"


@api_app.command("openapi")
def openapi() -> None:
    """Print the OpenAPI 3.1 document (what /openapi.json serves)."""
    sys.stdout.write(openapi_document())


def register(app: typer.Typer) -> None:
    """Mount ``hookstream api`` and ``hookstream api-keys`` on the CLI."""
    from hookstream.shell.cli.api_keys import api_keys_app

    app.add_typer(api_app, name="api")
    app.add_typer(api_keys_app, name="api-keys")
