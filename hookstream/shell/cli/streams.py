"""``hookstream streams worker``: run the fan-out worker (start several for one consumer group)."""

from __future__ import annotations

import typer

from hookstream.shell.cli._context import settings_of

streams_app = typer.Typer(help="The Faust stream worker that fans events out to subscriptions.", no_args_is_help=True)


@streams_app.command("worker")
def worker(
    ctx: typer.Context,
    metrics_port: int = typer.Option(None, "--metrics-port", help="Serve Prometheus /metrics here (default HOOKSTREAM_METRICS_PORT; 0 = any free port)."),
    loglevel: str = typer.Option("warn", "--loglevel", "-l", help="crit, error, warn, info or debug."),
) -> None:
    """Join events with subscriptions and write one delivery record per matching endpoint."""
    from faust.worker import Worker

    from hookstream.core.kafka import make_producer
    from hookstream.core.metrics import LagMonitor, serve_metrics
    from hookstream.core.topics import EVENT_TOPICS
    from hookstream.streams.app import create_app, group_id, producer_overrides

    if metrics_port is not None and not 0 <= metrics_port <= 65535:
        from hookstream.core.errors import ConfigError

        raise ConfigError(f"--metrics-port must be from 0 to 65535 (got {metrics_port})")
    settings = settings_of(ctx)
    app = create_app(settings, producer=make_producer(settings, **producer_overrides()))
    port = settings.metrics_port if metrics_port is None else metrics_port
    if port is not None and (port or metrics_port == 0):
        bound = serve_metrics(port, settings.metrics_host)
        typer.echo(f"metrics: http://{settings.metrics_host}:{bound}/metrics", err=True)
    lag = LagMonitor(settings, group_id(settings), [settings.topic(t) for t in EVENT_TOPICS.values()])
    lag.start()
    runner = Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False, loop=_uvloop())
    # Faust's terminal spinner turns the root logger to DEBUG so it can spin on every record:
    # that alone cost a fifth of the worker's CPU (every aiokafka send built a debug record).
    runner.spinner = None
    try:
        runner.execute_from_commandline()
    finally:
        if app.hookstream_failure is not None:  # logged when it happened; the events are read again on restart
            raise SystemExit(1)


def _uvloop():
    """A uvloop event loop when uvloop is installed (it is a dependency on Linux and macOS)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop()
