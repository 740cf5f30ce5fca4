"""``hookstream secrets ...``: the keys that seal signing secrets and header values at rest.

``new-key`` prints a fresh ``kid:base64key`` entry (for ``HOOKSTREAM_SECRET_KEY``, newest
first); ``rotate-key`` re-seals every subscription under the newest key and republishes the
compacted topic; ``status`` says where the keys come from and which key ids are in use.
No command prints a key that is in use.
"""

from __future__ import annotations

import collections

import typer

from hookstream.shell.cli._output import Column, JsonOption, emit_json, table
from hookstream.core.crypto import SealedValueError, key_file_path, key_id_of, load_keyring, new_key_entry, prepend_key
from hookstream.core.errors import ConfigError, HookstreamError
from hookstream.core.settings import Settings
from hookstream.shell.cli._context import settings_of

secrets_app = typer.Typer(help="Keys sealing signing secrets and header values at rest.", no_args_is_help=True)


def _source(settings: Settings) -> str:
    if settings.secret_key:
        return "HOOKSTREAM_SECRET_KEY"
    return f"key file {key_file_path(settings)}"


@secrets_app.command("new-key")
def new_key(key_id: str | None = typer.Option(None, "--id", help="The key id (default: k + random hex).")) -> None:
    """Print a new key entry 'kid:base64key' to put first in HOOKSTREAM_SECRET_KEY (not used until then)."""
    typer.echo(new_key_entry(key_id))


@secrets_app.command("rotate-key")
def rotate_key(
    ctx: typer.Context,
    new: bool = typer.Option(False, "--new", help="First add a fresh key to the key file (not with HOOKSTREAM_SECRET_KEY)."),
    as_json: bool = JsonOption,
) -> None:
    """Re-seal every subscription's secrets and header values under the newest key, and republish the topic."""
    from hookstream.core.db import open_database
    from hookstream.subscriptions.rekey import reseal_all
    from hookstream.subscriptions.topic import sync

    settings = settings_of(ctx)
    if new:
        if settings.secret_key:
            raise ConfigError(
                "rotate-key --new: the keys come from HOOKSTREAM_SECRET_KEY; put `hookstream secrets new-key`'s "
                "output first in it (on every process) and run rotate-key without --new"
            )
        load_keyring(settings)  # makes the key file on first use, so the old key stays second
        prepend_key(key_file_path(settings), new_key_entry())
    keyring = load_keyring(settings)
    engine = open_database(settings, keyring=keyring)
    report = reseal_all(engine, keyring)
    published, problem = True, None
    try:
        sync(settings, engine=engine)
    except HookstreamError as exc:
        published, problem = False, str(exc)
    if as_json:
        emit_json(report.as_dict() | {"published": published})
    else:
        typer.echo(f"re-sealed {len(report.resealed)} subscription(s) under key {report.key_id} ({_source(settings)}); "
                   f"{len(report.current)} already were")
    if problem:
        typer.echo(f"warning: re-sealed, but not republished to Kafka ({problem}); run `hookstream subscriptions sync`", err=True)
    if report.unreadable:
        why = next(iter(report.unreadable.values()))
        raise SealedValueError(f"{len(report.unreadable)} subscription(s) left as they were, their values do not open: {why}")


@secrets_app.command("status")
def status(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Where the keys come from, their ids (newest first), and how many sealed values each key holds."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from hookstream.core.db import bind_all_tenants, open_database
    from hookstream.subscriptions.models import SubscriptionRow

    settings = settings_of(ctx)
    keyring = load_keyring(settings)
    counts: collections.Counter = collections.Counter()
    with Session(open_database(settings, keyring=keyring)) as session, session.begin():
        bind_all_tenants(session)  # counts every tenant's values (row-level security)
        for secrets, headers in session.execute(select(SubscriptionRow.secrets, SubscriptionRow.headers)):
            counts.update(key_id_of(i.get("secret")) or "clear" for i in secrets or [])
            counts.update(key_id_of(v) or "clear" for v in (headers or {}).values())
    doc = {"source": _source(settings), "key_ids": list(keyring.ids), "newest": keyring.newest, "values_by_key_id": dict(counts)}
    if as_json:
        emit_json(doc)
        return
    typer.echo(f"keys from {doc['source']}: {', '.join(keyring.ids)} (newest {keyring.newest})")
    if counts:
        table(["KEY ID", Column("SEALED VALUES", "right"), "NOTE"],
              [(key_id, n, "" if key_id in keyring.ids else "not in the keyring: these do not open") for key_id, n in sorted(counts.items())])
