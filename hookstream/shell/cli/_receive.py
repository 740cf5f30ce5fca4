"""``hookstream receive``: the local webhook endpoint of ``hookstream.shell.receiver``.

The receiver runs on aiohttp, which only it needs: the ``receiver`` extra
(``pip install 'hookstream[receiver]'``, part of ``dev``). The command is registered without
importing it, so every other command starts without aiohttp, and without it this one says
which extra to install in one line (exit 1).
"""

from __future__ import annotations

import asyncio

import typer

from hookstream.core.errors import HookstreamError, ValidationError
from hookstream.shell.cli._context import settings_of

EXTRA = "receiver"


def _need_aiohttp() -> None:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        raise HookstreamError(
            f"hookstream receive needs aiohttp, which is not installed: pip install 'hookstream[{EXTRA}]'"
        ) from None


def receive(
    ctx: typer.Context,
    port: int = typer.Option(..., "--port", "-p", help="Port to listen on (0 picks a free one)."),
    secret: str = typer.Option(None, "--secret", help="The endpoint's signing secret, whsec_..."),
    subscription: str = typer.Option(None, "--subscription", help="Verify with this subscription's secrets, read from the store."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    fail_rate: float = typer.Option(0.0, "--fail-rate", min=0.0, max=1.0, help="Answer this share (0-1) of authentic requests with 503."),
    tolerance: str = typer.Option("5m", "--tolerance", help="How old or new webhook-timestamp may be."),
) -> None:
    """Run a local webhook endpoint that verifies Standard Webhooks signatures and prints each request."""
    from hookstream.core.settings import parse_duration

    if (secret is None) == (subscription is None):
        raise ValidationError("receive: give exactly one of --secret whsec_... or --subscription ID")
    window = parse_duration(tolerance, name="--tolerance")
    _need_aiohttp()
    from hookstream.shell.cli._output import printable
    from hookstream.shell.receiver import create_app, fixed_secrets, run, subscription_secrets

    if subscription is not None:
        from hookstream.subscriptions.store import SubscriptionStore

        store = SubscriptionStore.open(settings_of(ctx))
        # an operator's tool, given only an id: find its tenant (failing now, with NotFoundError's
        # one line, not on every request), then read it as that tenant
        owner = store.get_any_tenant(subscription).tenant_id
        source, announce = subscription_secrets(store, subscription, tenant_id=owner), f"verifying with the secrets of {subscription}"
    else:
        source, announce = fixed_secrets(secret), "verifying with the given secret"
    # a line shows what a stranger sent (webhook-id, type, tenant): printable(), like stored strings
    app = create_app(source, printer=lambda line: typer.echo(printable(line)), fail_rate=fail_rate, tolerance=window)
    asyncio.run(run(app, host, port, announce))
