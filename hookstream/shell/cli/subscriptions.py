"""``hookstream subscriptions ...``: manage tenants' webhook endpoints.

Every change is saved, then published to the compacted topic (``publish_pending``, which also
publishes any change an earlier run saved but could not publish). When Kafka cannot be reached
the change stays saved and pending: the command says so on stderr (``"published": false`` with
``--json``) and still exits 0, since repeating it would repeat the change; ``sync`` or the next
change publishes it. Secrets are printed by ``add`` and ``rotate-secret`` only, once; header
values never (names only, values ``***``), URLs with their query and user-info masked.

Each command parses its flags, calls one function of the service layer the HTTP API uses too
(``hookstream.shell.services.EndpointService``) and prints the result.

Tenancy: ``--tenant`` scopes every command to one tenant (another tenant's id is "not found").
These are operators' commands, so it may be left out: ``list`` then shows every tenant and says
so, and a command naming an id acts on it whichever tenant owns it (the service's
``ANY_TENANT``: looked up across tenants, then changed as that tenant).

``--secret`` and a ``--header`` value may be ``@path`` (read from that file) or ``-`` (read from
standard input), so a credential stays out of shell history and process listings.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from hookstream.shell.cli._output import JsonOption, emit_json, printable, table
from hookstream.core.errors import HookstreamError, ValidationError
from hookstream.core.redact import MASK, mask_url
from hookstream.core.settings import parse_duration
from hookstream.subscriptions.filters import parse_filters
from hookstream.subscriptions.models import Subscription
from hookstream.subscriptions.store import SubscriptionStore
from hookstream.shell.cli._context import setting_help, settings_of
from hookstream.shell.services.endpoints import ANY_TENANT, PUBLISH_TIMEOUT, Changed, EndpointService

subscriptions_app = typer.Typer(help="Manage webhook subscriptions (endpoints, event filters, secrets).", no_args_is_help=True)

TenantOption = typer.Option(None, "--tenant", help="Only act when the subscription belongs to this tenant (without it: any tenant's).")
ALL_TENANTS = "all tenants (no --tenant given)"
HeaderOption = typer.Option(
    None, "--header", help="Custom header 'Name: value' sent with every delivery (repeatable); value '@file' or '-' (stdin) reads it."
)
SecretOption = typer.Option(None, "--secret", help="Use this whsec_ secret instead of generating one; '@file' or '-' (stdin) reads it.")


def _show_secret(sub, plain: str, published: bool, as_json: bool, *, headline: str, note: str) -> None:
    """The one place a secret is printed in clear, once: after `add` and `rotate-secret` (one JSON
    document, or the headline, the secret and a note on it)."""
    if as_json:
        emit_json({"subscription": sub.to_public() | {"published": published}, "secret": plain, "published": published})
        return
    typer.echo(headline)
    typer.echo(f"secret: {plain}")
    typer.echo(note)


def _unpublished(exc: HookstreamError) -> None:
    typer.echo(
        f"warning: saved, but not published to Kafka yet ({exc}); it stays pending until "
        "`hookstream subscriptions sync` or the next change publishes it",
        err=True,
    )


def _service(ctx: typer.Context) -> EndpointService:
    settings = settings_of(ctx)
    return EndpointService(settings, SubscriptionStore.open(settings), on_unpublished=_unpublished)


def _tenant(tenant: str | None):
    """--tenant, or without it: whichever tenant owns the subscription."""
    return ANY_TENANT if tenant is None else tenant


class _Reader:
    """Reads ``@path`` and ``-`` values; standard input can be read once per command."""

    def __init__(self) -> None:
        self.stdin_used_by: str | None = None

    def value(self, text: str | None, what: str) -> str | None:
        if text is None:
            return None
        if text == "-":
            if self.stdin_used_by is not None:
                raise ValidationError(f"{what}: standard input is already read for {self.stdin_used_by}; use @file for this one")
            self.stdin_used_by = what
            return _one_value(sys.stdin.read(), what, "standard input")
        if text.startswith("@"):
            path = Path(text[1:]).expanduser()
            try:
                return _one_value(path.read_text("utf-8"), what, str(path))
            except (OSError, UnicodeDecodeError) as exc:
                raise ValidationError(f"{what}: cannot read {path}: {getattr(exc, 'strerror', None) or 'not UTF-8 text'}") from None
        return text


def _one_value(text: str, what: str, source: str) -> str:
    value = text.strip("\r\n")  # the newline an editor or `echo` adds is not part of the value
    if not value.strip():
        raise ValidationError(f"{what}: {source} is empty")
    if "\n" in value:
        raise ValidationError(f"{what}: {source} holds more than one line")
    return value


def _headers(values: list[str] | None, reader: _Reader | None = None) -> dict[str, str] | None:
    if not values:
        return None
    reader = reader or _Reader()
    out = {}
    for item in values:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            # not echoed: a header value is often a credential
            raise ValidationError("header: expected 'Name: value' (a --header without a name or colon)")
        out[name.strip()] = reader.value(value.strip(), f"header {name.strip()}")
    return out


def _table(subs: list[Subscription]) -> None:
    table(["ID", "TENANT", "STATUS", "EVENTS", "URL"], [
        (sub.id, sub.tenant_id, str(sub.status) + ("*" if sub.unpublished else ""), ",".join(sub.events), mask_url(sub.url))
        for sub in subs
    ])
    if any(sub.unpublished for sub in subs):
        typer.echo("* not yet published to Kafka (run `hookstream subscriptions sync`)")


def _show(sub: Subscription) -> None:
    secrets = "; ".join(
        s.masked + (f" (valid until {s.expires_at:%Y-%m-%d %H:%M:%S}Z)" if s.expires_at else " (current)") for s in sub.secrets
    )
    lines = [
        ("id", sub.id),
        ("tenant", sub.tenant_id),
        ("status", str(sub.status)),
        ("url", mask_url(sub.url)),
        ("events", ", ".join(sub.events)),
        ("description", sub.description or "-"),
        ("headers", "; ".join(f"{k}: {MASK}" for k in sub.headers) or "-"),
        ("secrets", secrets or (f"unreadable: {sub.sealed_error}" if sub.sealed_error else "-")),
        ("created", sub.created_at.isoformat()),
        ("updated", sub.updated_at.isoformat()),
        ("version", f"{sub.version}" + (" (not yet published)" if sub.unpublished else " (published)")),
    ]
    for name, value in lines:
        typer.echo(f"{name + ':':<13}{printable(value)}")  # a description may hold anything


def _changed(changed: Changed, verb: str, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    if as_json:
        emit_json({"subscription": changed.endpoint.to_public(), "published": changed.published, **(extra or {})})
    else:
        typer.echo(f"{verb} {changed.endpoint.id}")


@subscriptions_app.command("add")
def add(
    ctx: typer.Context,
    tenant: str = typer.Option(..., "--tenant", help="The tenant that owns the endpoint."),
    url: str = typer.Option(..., "--url", help="Where to deliver (https; see HOOKSTREAM_ALLOW_HTTP)."),
    events: str = typer.Option(..., "--events", help="Comma-separated filters: exact types, 'payment.*' prefixes or '*'."),
    secret: str | None = SecretOption,
    description: str = typer.Option("", "--description", help="A note for humans."),
    header: list[str] | None = HeaderOption,
    as_json: bool = JsonOption,
) -> None:
    """Create a subscription; prints its id and, this once, its secret."""
    reader = _Reader()
    secret, headers = reader.value(secret, "secret"), _headers(header, reader)
    made = _service(ctx).create(tenant_id=tenant, url=url, events=parse_filters(events), secret=secret, description=description, headers=headers)
    sub = made.endpoint
    _show_secret(sub, made.secret, made.published, as_json, headline=f"created {sub.id} for tenant {sub.tenant_id}",
                 note="(the secret is shown only now; store it where the receiver can verify signatures)")


@subscriptions_app.command("list")
def list_(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant's subscriptions."),
    as_json: bool = JsonOption,
) -> None:
    """List subscriptions (all tenants unless --tenant, and it says so); secrets masked."""
    subs = _service(ctx).every(tenant_id=_tenant(tenant))
    if as_json:
        if tenant is None:
            typer.echo(ALL_TENANTS, err=True)  # stdout stays one JSON document
        emit_json([s.to_public() for s in subs])
        return
    if tenant is None:
        typer.echo(ALL_TENANTS)
    if not subs:
        typer.echo("no subscriptions")
        return
    _table(subs)


@subscriptions_app.command("show")
def show(ctx: typer.Context, subscription_id: str = typer.Argument(..., metavar="ID"), tenant: str | None = TenantOption, as_json: bool = JsonOption) -> None:
    """Show one subscription; secrets masked."""
    sub = _service(ctx).get(subscription_id, tenant_id=_tenant(tenant))
    if tenant is None:
        typer.echo(f"looked up across {ALL_TENANTS}", err=True)
    if as_json:
        emit_json(sub.to_public())
    else:
        _show(sub)


@subscriptions_app.command("update")
def update(
    ctx: typer.Context,
    subscription_id: str = typer.Argument(..., metavar="ID"),
    tenant: str | None = TenantOption,
    url: str | None = typer.Option(None, "--url"),
    events: str | None = typer.Option(None, "--events"),
    description: str | None = typer.Option(None, "--description"),
    header: list[str] | None = HeaderOption,
    clear_headers: bool = typer.Option(False, "--clear-headers", help="Remove every custom header."),
    as_json: bool = JsonOption,
) -> None:
    """Change the URL, event filters, description or headers (--header replaces them all)."""
    if clear_headers and header:
        raise ValidationError("update: give --header or --clear-headers, not both")
    service = _service(ctx)
    headers = {} if clear_headers else _headers(header)
    changed = service.update(
        subscription_id, tenant_id=_tenant(tenant), url=url, events=parse_filters(events) if events is not None else None,
        description=description, headers=headers,
    )
    _changed(changed, "updated", as_json)


@subscriptions_app.command("disable")
def disable(ctx: typer.Context, subscription_id: str = typer.Argument(..., metavar="ID"), tenant: str | None = TenantOption, as_json: bool = JsonOption) -> None:
    """Stop deliveries to the endpoint (kept, can be enabled again)."""
    _changed(_service(ctx).disable(subscription_id, tenant_id=_tenant(tenant)), "disabled", as_json)


@subscriptions_app.command("enable")
def enable(ctx: typer.Context, subscription_id: str = typer.Argument(..., metavar="ID"), tenant: str | None = TenantOption, as_json: bool = JsonOption) -> None:
    """Resume deliveries to a disabled endpoint."""
    _changed(_service(ctx).enable(subscription_id, tenant_id=_tenant(tenant)), "enabled", as_json)


@subscriptions_app.command("rm")
def rm(ctx: typer.Context, subscription_id: str = typer.Argument(..., metavar="ID"), tenant: str | None = TenantOption, as_json: bool = JsonOption) -> None:
    """Delete a subscription (a tombstone on the topic)."""
    deleted = _service(ctx).delete(subscription_id, tenant_id=_tenant(tenant))
    sub = deleted.endpoint
    if as_json:
        emit_json({"deleted": sub.id, "tenant_id": sub.tenant_id, "published": deleted.published})
    else:
        typer.echo(f"deleted {sub.id}")


@subscriptions_app.command("rotate-secret")
def rotate_secret(
    ctx: typer.Context,
    subscription_id: str = typer.Argument(..., metavar="ID"),
    tenant: str | None = TenantOption,
    grace: str | None = typer.Option(None, "--grace", help=f"How long the old secret stays valid (default {setting_help('secret_grace_seconds')})."),
    secret: str | None = SecretOption,
    as_json: bool = JsonOption,
) -> None:
    """Issue a new secret (printed once); older ones keep signing for the grace window."""
    secret = _Reader().value(secret, "secret")
    service = _service(ctx)
    grace_seconds = parse_duration(grace, name="--grace") if grace is not None else None
    rotated = service.rotate_secret(subscription_id, tenant_id=_tenant(tenant), secret=secret, grace_seconds=grace_seconds)
    sub, plain = rotated.endpoint, rotated.secret
    older = [s for s in sub.secrets[1:] if s.expires_at]
    note = (f"(shown only now; the previous secret stays valid until {min(s.expires_at for s in older):%Y-%m-%d %H:%M:%S}Z)"
            if older else "(shown only now; the previous secret is no longer valid)")
    _show_secret(sub, plain, rotated.published, as_json, headline=f"rotated the secret of {sub.id}", note=note)


@subscriptions_app.command("sync")
def sync_(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Republish every subscription to the compacted topic and tombstone ids the store no longer has."""
    service = _service(ctx)
    report = service.sync(timeout=PUBLISH_TIMEOUT)
    settings = service.settings
    if as_json:
        emit_json(report.as_dict())
    else:
        typer.echo(
            f"published {len(report.published)} subscription(s), {len(report.tombstoned)} pending delete(s), "
            f"removed {len(report.strays)} unknown id(s) from {settings.topic('subscriptions')}"
        )
