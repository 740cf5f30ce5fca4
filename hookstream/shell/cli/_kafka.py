"""``hookstream kafka ...`` (the local broker) and ``hookstream topics ...``."""

from __future__ import annotations

import typer

from hookstream.shell.broker import LocalBroker
from hookstream.shell.cli._output import Column, JsonOption, emit_json, table
from hookstream.core.topics import describe, ensure_topics, topic_specs
from hookstream.shell.cli._context import settings_of

kafka_app = typer.Typer(help="Run a local Apache Kafka broker (KRaft, jars from Maven Central).", no_args_is_help=True)
topics_app = typer.Typer(help="Create and inspect the pipeline's topics.", no_args_is_help=True)


@kafka_app.command("fetch")
def kafka_fetch(ctx: typer.Context) -> None:
    """Download the broker's jars from Maven Central into the cache (once)."""
    broker = LocalBroker(settings_of(ctx))
    typer.echo(f"Kafka {broker.settings.kafka_version} jars in {broker.fetch()}")


@kafka_app.command("start")
def kafka_start(ctx: typer.Context) -> None:
    """Start the broker in the background; returns once it answers a metadata request."""
    broker = LocalBroker(settings_of(ctx))
    before = broker.status(timeout=2.0)
    if before.answering:
        who = f"pid {before.pid}" if before.pid else "not started by hookstream"
        typer.echo(f"Kafka is already running at {before.bootstrap} ({who})")
        return
    st = broker.start()
    typer.echo(f"Kafka {broker.settings.kafka_version} is running at {st.bootstrap} (pid {st.pid}, data {broker.paths.data})")


@kafka_app.command("status")
def kafka_status(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Exit 0 when the broker runs and answers, 1 otherwise."""
    broker = LocalBroker(settings_of(ctx))
    st = broker.status()
    if as_json:
        emit_json({"bootstrap": st.bootstrap, "pid": st.pid, "answering": st.answering, "data_dir": str(broker.paths.data)})
    elif st.answering:
        typer.echo(f"running at {st.bootstrap}" + (f" (pid {st.pid})" if st.pid else " (not started by hookstream)"))
    elif st.pid:
        typer.echo(f"pid {st.pid} is alive but does not answer at {st.bootstrap}; see {broker.paths.server_log}")
    else:
        typer.echo(f"not running (nothing answers at {st.bootstrap})")
    raise typer.Exit(0 if st.answering else 1)


@kafka_app.command("stop")
def kafka_stop(ctx: typer.Context) -> None:
    """Stop the broker started by `hookstream kafka start` and wait for it to exit."""
    broker = LocalBroker(settings_of(ctx))
    if broker.stop():
        typer.echo(f"stopped the broker at {broker.settings.kafka_bootstrap}")
    else:
        typer.echo(f"no broker started by hookstream is running at {broker.settings.kafka_bootstrap}")


@kafka_app.command("reset")
def kafka_reset(ctx: typer.Context, yes: bool = typer.Option(False, "--yes", help="Do not ask.")) -> None:
    """Stop the broker and delete its local data (every topic and offset)."""
    broker = LocalBroker(settings_of(ctx))
    if not yes:
        typer.confirm(f"Delete {broker.paths.data}?", abort=True)
    broker.reset()
    typer.echo(f"deleted {broker.paths.data}")


@topics_app.command("ensure")
def topics_ensure(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Create every topic the pipeline uses (idempotent); report topics configured differently."""
    settings = settings_of(ctx)
    report = ensure_topics(settings)
    if as_json:
        emit_json({"created": report.created, "unchanged": report.unchanged, "differences": report.differences})
    else:
        table(["STATUS", "TOPIC"], [("created", name) for name in report.created] + [("ok", name) for name in report.unchanged])
        if report.differences:
            table(["STATUS", "TOPIC", "DIFFERENCES"], [("DIFFERS", name, "; ".join(diffs)) for name, diffs in report.differences.items()],
                  err=True)
    if report.differences:
        typer.echo(
            f"error: {len(report.differences)} topic(s) exist with a configuration other than declared; "
            "alter them with kafka-configs or recreate them",
            err=True,
        )
        raise typer.Exit(1)


@topics_app.command("list")
def topics_list(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Show the pipeline's topics with partitions and configuration."""
    settings = settings_of(ctx)
    specs = topic_specs(settings)
    actual = describe(settings, [s.name for s in specs])
    rows = []
    for spec in specs:
        full = settings.topic(spec.name)
        partitions, config = actual.get(full, (None, {}))
        shown = {k: config.get(k) for k in spec.config}
        rows.append({"topic": full, "exists": full in actual, "partitions": partitions, "config": shown, "purpose": spec.purpose})
    if as_json:
        emit_json(rows)
        return
    table(["TOPIC", Column("PARTITIONS", "right"), "CONFIG"], [
        (r["topic"], r["partitions"] if r["exists"] else "missing", " ".join(f"{k}={v}" for k, v in r["config"].items()))
        for r in rows
    ])
