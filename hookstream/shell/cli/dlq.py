"""``hookstream dlq list|show|replay`` and ``hookstream replay events``: what operators touch.

``dlq list|replay`` and ``replay events`` go through the service layer the HTTP API uses
(``DeadLetterService``, ``EndpointService.recover``); the commands parse flags, ask, and print.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from hookstream.shell.cli._output import Column, JsonOption, emit_json, printable, progress, table
from hookstream.shell.cli._context import settings_of

dlq_app = typer.Typer(help="Inspect and replay dead letters.", no_args_is_help=True)
replay_app = typer.Typer(help="Re-deliver past events to one subscription.", no_args_is_help=True)


def _filter(tenant, subscription, event_type, since, until, reason):
    from hookstream.shell.services.dlq import make_filter

    return make_filter(tenant_id=tenant, endpoint_id=subscription, event_type=event_type, since=since, until=until,
                       reason=reason, flag="--")


def _dead_letters(ctx: typer.Context):
    from hookstream.shell.services.dlq import DeadLetterService

    return DeadLetterService(settings_of(ctx))


_tenant = typer.Option(None, "--tenant", help="Only this tenant's (without it: every tenant's, and it says so).")
ALL_TENANTS = "all tenants (no --tenant given)"
_subscription = typer.Option(None, "--subscription", help="Only this subscription's.")
_type = typer.Option(None, "--type", help="Event type, or a prefix like payment.*")
_since = typer.Option(None, "--since", help="RFC 3339 time or a span back from now (2h, 7d).")
_until = typer.Option(None, "--until", help="RFC 3339 time or a span back from now.")
_reason = typer.Option(None, "--reason", help="Reason contains this text (e.g. client_error, exhausted, malformed).")


@dlq_app.command("list")
def dlq_list(ctx: typer.Context, tenant: Optional[str] = _tenant, subscription: Optional[str] = _subscription, event_type: Optional[str] = _type,
             since: Optional[str] = _since, until: Optional[str] = _until, reason: Optional[str] = _reason,
             as_json: bool = JsonOption) -> None:
    """Dead letters with subscription, event type, attempts and last error."""
    flt = _filter(tenant, subscription, event_type, since, until, reason)
    rows = [d.summary() for d in _dead_letters(ctx).matching(flt)]
    if as_json:
        if flt.all_tenants:
            typer.echo(ALL_TENANTS, err=True)  # stdout stays one JSON document
        emit_json(rows)
        return
    if flt.all_tenants:
        typer.echo(ALL_TENANTS)
    if not rows:
        typer.echo("no dead letters match")
        return
    # table() passes every cell through printable(): tenants and endpoints wrote them
    table(["ID", "DEAD-LETTERED AT", "TENANT", "SUBSCRIPTION", "TYPE", Column("ATTEMPTS", "right"), "REASON", "LAST ERROR"],
          [(r["id"], r["dead_lettered_at"], r["tenant_id"], r["subscription_id"], r["event_type"], r["attempts"],
            r["reason"], r["last_error"]) for r in rows])
    typer.echo(f"{len(rows)} dead letter(s)", err=True)


@dlq_app.command("show")
def dlq_show(ctx: typer.Context, entry_id: str = typer.Argument(..., help="The id from `dlq list` (partition-offset)."),
             tenant: Optional[str] = typer.Option(None, "--tenant", help="Only when it is this tenant's (without it: any tenant's)."),
             as_json: bool = JsonOption) -> None:
    """One dead letter in full: the event, every attempt, the reason."""
    doc = _dead_letters(ctx).show(entry_id, tenant_id=tenant)
    if tenant is None:
        typer.echo(f"looked up across {ALL_TENANTS}", err=True)
    if as_json:
        emit_json(doc)
        return
    _print_dead_letter(doc)


def _print_dead_letter(doc: dict) -> None:
    """``dlq show`` in text: every stored string through ``printable`` (tenants and endpoints wrote them)."""
    import json

    for k in ("id", "reason", "dead_lettered_at", "delivery_id", "tenant_id", "subscription_id", "event_type", "event_id"):
        typer.echo(f"{k:<17} {printable(doc[k])}")
    for a in doc["attempt_history"]:
        if not isinstance(a, dict):  # the worker's decode_record only checks it is a list
            typer.echo(f"attempt {'?':<9} {printable(a)}")
        elif "omitted" in a and "attempt" not in a:  # the history keeps the first and the last attempts
            typer.echo(f"{'':<17} ({printable(a['omitted'])} attempt(s) omitted)")
        else:
            typer.echo(f"attempt {printable(a.get('attempt', '?')):<9} " + " ".join(f"{printable(k)}={printable(v)}" for k, v in a.items()))
    if doc["event"] is not None:
        typer.echo("event            " + json.dumps(doc["event"], sort_keys=True))  # ensure_ascii: escaped already
    original = doc.get("original")
    if original:  # where an unreadable or too large record came from, its size and an excerpt
        ref = original.get("ref") if isinstance(original.get("ref"), dict) else {}
        where = {k: original.get(k, ref.get(k)) for k in ("topic", "partition", "offset")}
        if any(v is not None for v in where.values()):
            typer.echo("original         " + " ".join(f"{k}={printable(v)}" for k, v in where.items() if v is not None))
        for k in ("value_bytes", "excerpt", "value_excerpt_b64", "key_b64", "value_b64"):
            if original.get(k) is not None:
                typer.echo(f"  {k:<15} {printable(original[k])}")


@dlq_app.command("replay")
def dlq_replay(ctx: typer.Context, tenant: Optional[str] = _tenant, subscription: Optional[str] = _subscription, event_type: Optional[str] = _type,
               since: Optional[str] = _since, until: Optional[str] = _until, reason: Optional[str] = _reason,
               dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be replayed; send nothing."),
               yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
               force: bool = typer.Option(False, "--force", help="Replay entries that were replayed before, again."),
               as_json: bool = JsonOption) -> None:
    """Put matching dead letters back on the delivery path (same webhook-id, fresh attempts)."""
    flt = _filter(tenant, subscription, event_type, since, until, reason)
    service = _dead_letters(ctx)
    entries = service.matching(flt)
    if flt.all_tenants:
        typer.echo(ALL_TENANTS, err=as_json)  # stdout stays one JSON document
    if not entries:
        typer.echo("no dead letters match")
        return
    if not dry_run and not yes:
        if not sys.stdin.isatty():
            typer.echo("error: refusing to replay without confirmation; pass --yes (or --dry-run to look first)", err=True)
            raise typer.Exit(2)
        typer.confirm(f"Replay {len(entries)} dead letter(s)?", abort=True)
    if dry_run or len(entries) < 200:
        report = service.replay_entries(entries, dry_run=dry_run, force=force)
    else:
        with progress() as report_progress:
            report = service.replay_entries(entries, force=force, progress=lambda n: report_progress("replaying", n, len(entries)))
    if as_json:
        emit_json({"dry_run": dry_run, "replayed": report.replayed, "already_replayed": report.already,
                   "not_replayable": report.not_replayable, "failed": report.failed})
        _replay_failed(report)
        return
    verb = "would replay" if dry_run else "replayed"
    if dry_run:
        by_id = {d.id: d for d in entries}
        for entry in report.replayed:
            s = by_id[entry].summary()
            typer.echo(f"{verb} {entry}: {printable(s['event_type'])} -> {printable(s['subscription_id'])} "
                       f"(webhook-id {printable(s['delivery_id'])})")
    typer.echo(f"{verb} {len(report.replayed)} dead letter(s)")
    for entry, when in report.already.items():
        typer.echo(f"skipped {entry}: already replayed at {when} (--force to send it again)")
    for entry, why in report.not_replayable.items():
        typer.echo(f"skipped {entry}: {printable(why)}")
    for entry, why in report.failed.items():
        typer.echo(f"failed {entry}: {printable(why)}")
    _replay_failed(report)


def _replay_failed(report) -> None:
    if report.failed:
        from hookstream.core.errors import BrokerError

        raise BrokerError(f"{len(report.failed)} dead letter(s) were not taken by the broker (listed above); "
                          "the others are recorded as replayed, so running the replay again sends only these")


@replay_app.command("events")
def replay_events(ctx: typer.Context, subscription: str = typer.Option(..., "--subscription", help="The subscription to re-deliver to."),
                  since: str = typer.Option(..., "--since", help="RFC 3339 time or a span back from now (2h)."),
                  until: Optional[str] = _until,
                  tenant: Optional[str] = typer.Option(None, "--tenant", help="Must own the subscription when given."),
                  dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be re-delivered; send nothing."),
                  as_json: bool = JsonOption) -> None:
    """Re-fan the events of a time window to ONE subscription, with their original webhook-ids."""
    from hookstream.core.time import parse_since
    from hookstream.shell.services.endpoints import ANY_TENANT, EndpointService
    from hookstream.subscriptions.store import SubscriptionStore

    settings = settings_of(ctx)
    service = EndpointService(settings, SubscriptionStore.open(settings))
    report = service.recover(subscription, tenant_id=ANY_TENANT if tenant is None else tenant,
                             since=parse_since(since, name="--since"),
                             until=parse_since(until, name="--until") if until else None, dry_run=dry_run)
    if as_json:
        emit_json({"subscription": subscription, "dry_run": dry_run, "scanned": report.scanned, "queued": report.queued,
                   "skipped_invalid": report.skipped_invalid, "refused": report.refused})
    else:
        typer.echo(f"{'would re-deliver' if dry_run else 're-delivering'} {report.queued} event(s) to {subscription} "
                   f"(scanned {report.scanned}, {report.skipped_invalid} unreadable skipped)")
        for event_id, why in report.refused.items():
            typer.echo(f"refused event {printable(event_id)}: {printable(why)}")
