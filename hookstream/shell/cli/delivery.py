"""``hookstream delivery worker`` and ``hookstream deliveries list|show`` (the attempt log)."""

from __future__ import annotations

import asyncio
import gc
import logging

import typer

from hookstream.shell.cli._output import Column, JsonOption, emit_json, printable, table
from hookstream.core.errors import BrokerError
from hookstream.core.settings import MAX_CONCURRENCY, Settings
from hookstream.shell.cli._context import setting_help, settings_of

delivery_app = typer.Typer(help="The delivery worker: POST signed webhooks, retry, dead-letter.", no_args_is_help=True)
deliveries_app = typer.Typer(help="Inspect delivery attempts (the attempt log).", no_args_is_help=True)

log = logging.getLogger("hookstream.delivery")

ALL_TENANTS = "all tenants (no --tenant given)"
MAX_LIST_LIMIT = 10_000  # deliveries list --limit (checked by services.messages.MAX_DELIVERIES, the same)


@delivery_app.command("worker")
def worker(
    ctx: typer.Context,
    metrics_port: int = typer.Option(None, "--metrics-port", help="Serve Prometheus /metrics here (default HOOKSTREAM_METRICS_PORT; 0 = any free port)."),
    concurrency: int = typer.Option(None, "--concurrency", help=f"Records in flight per process at most (default {setting_help('delivery_concurrency')})."),
    endpoint_concurrency: int = typer.Option(None, "--endpoint-concurrency", help=f"Requests in flight per endpoint at most (default {setting_help('endpoint_concurrency')})."),
    endpoint_backlog: int = typer.Option(None, "--endpoint-backlog", help=f"Records admitted per endpoint (in flight + waiting); more are deferred to a retry tier without an attempt (default {setting_help('endpoint_backlog')})."),
    loglevel: str = typer.Option("info", "--loglevel", "-l", help="error, warning, info or debug."),
) -> None:
    """Consume delivery records and POST them, signed; retry through the tier topics; dead-letter.

    The circuit breaker is configured by the HOOKSTREAM_BREAKER_* variables (README)."""
    from hookstream.delivery.attempt import Limits
    from hookstream.delivery.breaker import BreakerConfig
    from hookstream.core.errors import ConfigError

    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = settings_of(ctx)
    for name, value in (("--concurrency", concurrency), ("--endpoint-concurrency", endpoint_concurrency), ("--endpoint-backlog", endpoint_backlog)):
        if value is not None and not 1 <= value <= MAX_CONCURRENCY:
            raise ConfigError(f"{name} must be from 1 to {MAX_CONCURRENCY} (got {value})")
    # an option given wins over its variable; neither: the settings' one default
    concurrency = settings.delivery_concurrency if concurrency is None else concurrency
    endpoint_concurrency = settings.endpoint_concurrency if endpoint_concurrency is None else endpoint_concurrency
    endpoint_backlog = settings.endpoint_backlog if endpoint_backlog is None else endpoint_backlog
    if metrics_port is not None and not 0 <= metrics_port <= 65535:  # checked before the minute spent waiting for the broker
        raise ConfigError(f"--metrics-port must be from 0 to 65535 (got {metrics_port})")
    limits = Limits(endpoint_concurrency=endpoint_concurrency, endpoint_backlog=max(endpoint_backlog, endpoint_concurrency))
    breaker = BreakerConfig.from_settings(settings)
    port = settings.metrics_port if metrics_port is None else metrics_port
    _run_worker(settings, concurrency=concurrency, limits=limits, breaker=breaker, metrics_port=port, serve=bool(port) or metrics_port == 0)


def _run_worker(settings: Settings, *, concurrency, limits, breaker, metrics_port: int, serve: bool) -> None:
    import prometheus_client
    import uvloop

    from hookstream.core.kafka import make_consumer, make_producer
    from hookstream.delivery.worker import (
        CommitRelay,
        Worker,
        consumer_overrides,
        group_id,
        install_signal_handlers,
        producer_overrides,
    )
    from hookstream.core.crypto import load_keyring
    from hookstream.core.db import open_database
    from hookstream.core.metrics import LagMonitor, serve_metrics
    from hookstream.subscriptions.view import FollowerThread, SubscriptionTable
    from hookstream.core.topics import DELIVERIES, retry_topic

    prometheus_client.disable_created_metrics()
    # the worker logs every tenant's attempts: its sessions are bound to all tenants (row-level security)
    keyring = load_keyring(settings)  # opens the subscriptions' sealed secrets (once per version)
    engine = open_database(settings, all_tenants=True, keyring=keyring)
    table = SubscriptionTable(keyring, reload=lambda: load_keyring(settings))
    follower = [FollowerThread(settings, table).start()]

    def check_follower() -> None:
        # a follower that died is restarted on the same table: never go on with a frozen view
        if not follower[0].alive:
            log.error("subscriptions follower stopped (%s); starting a new one", follower[0].error)
            follower[0] = FollowerThread(settings, table).start()

    if not follower[0].wait_ready(60):
        raise follower[0].error or BrokerError(f"could not read the subscriptions topic at {settings.kafka_bootstrap} within 60s")
    if serve:
        bound = serve_metrics(metrics_port, settings.metrics_host)
        typer.echo(f"metrics: http://{settings.metrics_host}:{bound}/metrics", err=True)
    topics = [settings.topic(DELIVERIES)] + [settings.topic(retry_topic(t)) for t in range(1, len(settings.retry_schedule) + 1)]
    lag = LagMonitor(settings, group_id(settings), topics)
    lag.start()

    async def main() -> None:
        stop = asyncio.Event()
        install_signal_handlers(stop)
        # the worker runs on Kafka clients built here, with hookstream.core.kafka's configs
        commits = CommitRelay()
        consumer = make_consumer(settings, group_id(settings), **consumer_overrides(commits))
        producer = make_producer(settings, **producer_overrides())
        w = Worker(settings, table=table, engine=engine, consumer=consumer, producer=producer, commits=commits,
                   concurrency=concurrency, limits=limits, breaker_config=breaker, follower_check=check_follower)
        await w.run(stop, ready=lambda: typer.echo("delivery worker ready", err=True))

    # everything imported and set up so far lives as long as the process: keep it out of the
    # cyclic collector's full passes, which otherwise stall the event loop now and then
    gc.collect()
    gc.freeze()
    # and collect the young generation every 10,000 allocations, not 700: a delivery allocates a
    # few dozen containers (record, task, coroutines, futures), nearly all freed by reference
    # counting, so the default ran a young pass every ~20 deliveries for little (-10% CPU on the
    # worker's own Python path, docs/benchmarks.md)
    gc.set_threshold(10_000, 10, 10)
    try:
        uvloop.run(main())
    finally:
        lag.stop()
        follower[0].stop()
        engine.dispose()


@deliveries_app.command("list")
def deliveries_list(
    ctx: typer.Context,
    tenant: str = typer.Option(None, "--tenant", help="Only this tenant's deliveries (without it: every tenant's, and it says so)."),
    subscription: str = typer.Option(None, "--subscription", help="Only this subscription's deliveries."),
    status: str = typer.Option(None, "--status", help="succeeded, failed or dead (the latest attempt's)."),
    limit: int = typer.Option(50, "--limit", help=f"At most this many, newest first (1-{MAX_LIST_LIMIT})."),
    as_json: bool = JsonOption,
) -> None:
    """Deliveries with their latest attempt, newest first."""
    rows = _messages(ctx).deliveries(tenant_id=_tenant(tenant), endpoint_id=subscription, status=status, limit=limit, flag="--")
    if as_json:
        if tenant is None:
            typer.echo(ALL_TENANTS, err=True)  # stdout stays one JSON document
        emit_json(rows)
        return
    if tenant is None:
        typer.echo(ALL_TENANTS)
    if not rows:
        typer.echo("no deliveries")
        return
    # table() passes every cell through printable(): tenants wrote the ids and types
    table(["DELIVERY", "STATUS", Column("ATTEMPTS", "right"), Column("HTTP", "right"), "TYPE", "TENANT", "SUBSCRIPTION",
           "ATTEMPTED AT"],
          [(r["delivery_id"], r["status"], r["attempts"], r["http_status"], r["event_type"], r["tenant_id"],
            r["subscription_id"], r["attempted_at"]) for r in rows])


@deliveries_app.command("show")
def deliveries_show(
    ctx: typer.Context,
    delivery_id: str = typer.Argument(..., help="The delivery id (msg_...)."),
    tenant: str = typer.Option(None, "--tenant", help="Only when it is this tenant's delivery (without it: any tenant's)."),
    as_json: bool = JsonOption,
) -> None:
    """Every attempt of one delivery."""
    rows = _messages(ctx).delivery_attempts(delivery_id, tenant_id=_tenant(tenant))
    if tenant is None:
        typer.echo(f"looked up across {ALL_TENANTS}", err=True)
    if as_json:
        emit_json({"delivery_id": delivery_id, "attempts": rows})
        return
    # every stored string through printable(): tenants wrote the ids, endpoints the answers and errors
    first = {k: printable(v) for k, v in rows[0].items()}
    typer.echo(f"delivery {printable(delivery_id)}: {first['event_type']} (event {first['event_id']}) "
               f"for tenant {first['tenant_id']}, subscription {first['subscription_id']}")
    # endpoints wrote the answers and errors: table() escapes them
    table(["#", "ATTEMPTED AT", "STATUS", "RESULT", Column("MS", "right"), "RESPONSE"], [
        (r["attempt"], r["attempted_at"], r["status"],
         f"HTTP {r['http_status']}" if r["http_status"] is not None else (r["error"] or "no response"),
         f"{r['duration_ms']:.1f}", repr(r["response_excerpt"][:200]) if r["response_excerpt"] else None)
        for r in rows
    ])


def _engine(settings: Settings):
    from hookstream.core.db import open_database

    return open_database(settings)


def _messages(ctx: typer.Context):
    """The API's message service, for reading the attempt log (no store: nothing is resent)."""
    from hookstream.shell.services.messages import MessageService

    settings = settings_of(ctx)
    return MessageService(settings, None, engine=_engine(settings))


def _tenant(tenant: str | None):
    from hookstream.shell.services.endpoints import ANY_TENANT

    return ANY_TENANT if tenant is None else tenant


__all__ = ["deliveries_app", "delivery_app"]
