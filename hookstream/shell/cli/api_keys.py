"""``hookstream api-keys ...``: the keys of the HTTP API (``hookstream api``).

``create`` prints the key once (only its SHA-256 hash is stored); ``list`` shows each key's id,
its first characters, its tenant (or admin) and whether it is revoked, never the key;
``revoke`` stops a key within seconds (the API caches a key's check for 5 s).
"""

from __future__ import annotations

import typer

from hookstream.core.errors import ValidationError
from hookstream.shell.cli._context import settings_of
from hookstream.shell.api.keys import ApiKeyStore
from hookstream.shell.cli._output import JsonOption, emit_json, printable

api_keys_app = typer.Typer(help="Manage the HTTP API's keys (`hookstream api`).", no_args_is_help=True)


def _store(ctx: typer.Context) -> ApiKeyStore:
    return ApiKeyStore.open(settings_of(ctx))


@api_keys_app.command("create")
def create(
    ctx: typer.Context,
    tenant: str = typer.Option(None, "--tenant", help="The tenant the key acts for."),
    admin: bool = typer.Option(False, "--admin", help="An admin key: acts for any tenant (Hookstream-Tenant header), the only kind for admin operations."),
    name: str = typer.Option("", "--name", help="A name to tell keys apart."),
    as_json: bool = JsonOption,
) -> None:
    """Make a key and print it once: store it now, it cannot be shown again."""
    if admin == (tenant is not None):
        raise ValidationError("give either --tenant T or --admin")
    key, plain = _store(ctx).create(tenant_id=tenant, admin=admin, name=name)
    if as_json:
        emit_json({"api_key": key.to_public(), "key": plain})
        return
    typer.echo(plain)
    scope = "admin (any tenant)" if key.admin else f"tenant {key.tenant_id}"
    typer.echo(f"created {key.id} for {printable(scope)}; the key above is shown only now", err=True)


@api_keys_app.command("list")
def list_keys(
    ctx: typer.Context,
    tenant: str = typer.Option(None, "--tenant", help="Only this tenant's keys."),
    as_json: bool = JsonOption,
) -> None:
    """Every key (newest first), revoked ones marked; never the key itself."""
    keys = _store(ctx).list(tenant_id=tenant)
    if as_json:
        emit_json({"api_keys": [k.to_public() for k in keys]})
        return
    if not keys:
        typer.echo("no API keys" + (f" for tenant {printable(tenant)}" if tenant else ""))
        return
    for k in keys:
        public = k.to_public()
        scope = "admin" if k.admin else f"tenant={k.tenant_id}"
        state = f"revoked {public['revoked_at']}" if k.revoked else "active"
        name = f" name={k.name}" if k.name else ""
        typer.echo(printable(f"{k.id}  {k.prefix}…  {scope}  {state}  created {public['created_at']}{name}"))


@api_keys_app.command("revoke")
def revoke(ctx: typer.Context, key_id: str = typer.Argument(..., help="The key's id (key_...), from `hookstream api-keys list`."), as_json: bool = JsonOption) -> None:
    """Revoke a key: requests with it are refused (401)."""
    key = _store(ctx).revoke(key_id)
    if as_json:
        emit_json({"api_key": key.to_public()})
        return
    typer.echo(f"revoked {key.id} ({key.prefix}…)")
