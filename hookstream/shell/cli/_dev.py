"""``hookstream dev up|down|status``: the whole pipeline on this machine, one command."""

from __future__ import annotations

import os
import signal
import threading

import typer

from hookstream.shell.cli._output import Column, JsonOption, emit_json, printable, table
from hookstream.core.settings import Settings
from hookstream.shell.cli._context import settings_of

dev_app = typer.Typer(help="Run the whole pipeline locally: broker, topics, stream and delivery workers, the HTTP API.", no_args_is_help=True)

DEMO_TENANT = "demo"
DEMO_DESCRIPTION = "hookstream demo receiver"


def _demo_env() -> dict[str, str]:
    """The demo posts to a receiver on loopback: allow http and 127.0.0.0/8 for this stack only."""
    env = dict(os.environ)
    env["HOOKSTREAM_ALLOW_HTTP"] = "1"
    nets = [n for n in env.get("HOOKSTREAM_ALLOWED_NETWORKS", "").split(",") if n.strip()]
    env["HOOKSTREAM_ALLOWED_NETWORKS"] = ",".join(dict.fromkeys([*nets, "127.0.0.0/8"]))
    return env


def _demo_subscription(settings: Settings, receiver_port: int) -> str:
    """The demo's subscription (reused across runs), published to the subscriptions topic."""
    from hookstream.subscriptions.store import SubscriptionStore
    from hookstream.subscriptions.topic import publish_pending

    store = SubscriptionStore.open(settings)
    url = f"http://127.0.0.1:{receiver_port}/webhooks"
    for sub in store.list(tenant_id=DEMO_TENANT):
        if sub.description == DEMO_DESCRIPTION and sub.url == url:
            if not sub.active:
                store.enable(sub.id, tenant_id=DEMO_TENANT)
            break
    else:
        sub, _secret = store.add(DEMO_TENANT, url, ["*"], description=DEMO_DESCRIPTION)
    publish_pending(settings)
    return sub.id


def _publish_demo_events(settings: Settings) -> list[str]:
    from hookstream.producers import Publisher
    from hookstream.schemas import EVENT_TYPES, Event, example

    events = [Event.new(t, DEMO_TENANT, example(t)) for t in EVENT_TYPES]
    with Publisher(settings) as publisher:
        for event in events:
            publisher.publish(event)
    return [e.id for e in events]


def _demo_api_key(settings: Settings) -> str:
    """A new key for the demo tenant (printed once, like `hookstream api-keys create`)."""
    from hookstream.shell.api.keys import ApiKeyStore

    _key, plain = ApiKeyStore.open(settings).create(tenant_id=DEMO_TENANT, name="dev up --demo")
    return plain


def _interrupt(*_args) -> None:
    raise KeyboardInterrupt


@dev_app.command("up")
def up(
    ctx: typer.Context,
    detach: bool = typer.Option(False, "--detach", help="Return once everything is ready; stop later with `hookstream dev down`."),
    demo: bool = typer.Option(False, "--demo", help="Also start a local receiver, subscribe it to every event type and publish one event of each of the 12 types."),
    delivery_workers: int = typer.Option(None, "--delivery-workers", help="Delivery worker processes (default: one per usable core, os.sched_getaffinity).", show_default=False),
    stream_workers: int = typer.Option(1, "--stream-workers", help="Stream worker processes (one keeps up with the delivery workers on a few cores; docs/operations.md)."),
    streams_metrics_port: int = typer.Option(9464, "--streams-metrics-port", help="Metrics port of the first stream worker; the others take the next ones."),
    delivery_metrics_port: int = typer.Option(None, "--delivery-metrics-port", help="Metrics port of the first delivery worker; the others take the next ones (default: right after the stream workers', 9465 with one).", show_default=False),
    receiver_port: int = typer.Option(8765, "--receiver-port", help="Port of the demo receiver."),
    api_port: int = typer.Option(None, "--api-port", help="Port of the HTTP API (default HOOKSTREAM_API_PORT or 8080)."),
) -> None:
    """Start broker, topics, stream workers, delivery workers and the HTTP API; stream every delivery outcome."""
    from hookstream.shell.devstack import DevStack, follow_outcomes, format_outcome, idle_workers, plan_metrics_ports, port_free
    from hookstream.shell.machine import usable_cores

    if delivery_workers is None:
        delivery_workers = usable_cores()
    if delivery_metrics_port is None:
        delivery_metrics_port = streams_metrics_port + max(stream_workers, 1)
    env = _demo_env() if demo else dict(os.environ)
    # the demo's settings are its own environment's (which its processes inherit); else the command's
    settings = Settings.from_env(env) if demo else settings_of(ctx)
    api_port = settings.api_port if api_port is None else api_port
    # bad counts and clashing ports: one line before anything starts
    plan_metrics_ports(streams_metrics_port, stream_workers, delivery_metrics_port, delivery_workers, api_port=api_port)
    for line in idle_workers(settings, stream_workers=stream_workers, delivery_workers=delivery_workers):
        typer.echo(line, err=True)
    stack = DevStack(settings, env)

    def demo_parts(cfg: Settings):
        if not port_free(receiver_port):
            from hookstream.core.errors import HookstreamError

            raise HookstreamError(f"the demo receiver's port {receiver_port} is taken; choose another with --receiver-port")
        sub_id = _demo_subscription(cfg, receiver_port)
        return [("receiver", ["receive", "--port", str(receiver_port), "--subscription", sub_id], receiver_port)]

    stopping = threading.Event()
    # SIGTERM behaves like Ctrl-C: stop everything this command started. SIGINT is set
    # explicitly too: a shell starting us in the background hands us SIGINT ignored.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        state = stack.up(
            streams_metrics_port=streams_metrics_port, delivery_metrics_port=delivery_metrics_port,
            api_port=api_port, before_workers=demo_parts if demo else None,
            stream_workers=stream_workers, delivery_workers=delivery_workers,
        )
    except KeyboardInterrupt:
        typer.echo("stopped", err=True)
        raise typer.Exit(130)
    typer.echo(f"kafka at {settings.kafka_bootstrap}")
    table(["NAME", Column("PID", "right"), Column("PORT", "right"), "URL", "LOG"],
          [(p.name, p.pid, p.metrics_port or p.port or "-", p.url, p.log) for p in state.processes])
    typer.echo(f"Prometheus config for these workers: {stack.prometheus_config}")
    api = next((p for p in state.processes if p.name == "api"), None)
    if api is not None:
        typer.echo(f"API at {api.url} (docs/api.md; keys: `hookstream api-keys create`)")
    if demo:
        typer.echo(f"API key for tenant {DEMO_TENANT!r} (shown only now): {_demo_api_key(settings)}")
        ids = _publish_demo_events(settings)
        typer.echo(f"published {len(ids)} demo events (one of each type) for tenant {DEMO_TENANT!r}; "
                   f"the receiver prints them in {stack.dir / 'receiver.log'}")
    if detach:
        typer.echo("ready; stop with `hookstream dev down`")
        return
    typer.echo("ready; delivery outcomes follow (Ctrl-C stops everything)")
    code = 0
    try:
        def watch() -> bool:
            dead = stack.dead(state)
            if dead:
                for p in dead:
                    typer.echo(f"error: the {p.name} process (pid {p.pid}) died; see {p.log}", err=True)
                stopping.set()
            return stopping.is_set()

        # an outcome carries what tenants and endpoints wrote (types, ids, errors): printable()
        follow_outcomes(settings, lambda row: typer.echo(printable(format_outcome(row))), watch)
        code = 1  # only a dead process ends the loop
    except KeyboardInterrupt:
        pass
    finally:
        # a second Ctrl-C must not cut the shutdown short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stopped = stack.down(state)
        typer.echo(f"stopped {', '.join(stopped) or 'nothing'}", err=True)
    raise typer.Exit(code)


@dev_app.command("down")
def down(ctx: typer.Context) -> None:
    """Stop the stack `hookstream dev up` started (reverse order)."""
    from hookstream.shell.devstack import DevStack

    stopped = DevStack(settings_of(ctx)).down()
    typer.echo(f"stopped {', '.join(stopped)}" if stopped else "no dev stack is running")


@dev_app.command("status")
def status(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Each process of the stack: name, pid, port, alive, URL (metrics, or what it serves); exit 1 if any died."""
    from hookstream.shell.devstack import DevStack

    stack = DevStack(settings_of(ctx))
    state = stack.load()
    if state is None:
        if as_json:
            emit_json({"running": False, "processes": []})
        else:
            typer.echo("no dev stack is running")
        raise typer.Exit(1)
    rows = [{"name": p.name, "pid": p.pid, "alive": p.alive, "port": p.metrics_port or p.port, "metrics_url": p.metrics_url,
             "url": p.url, "log": p.log} for p in state.processes]
    prometheus = stack.prometheus_config if stack.prometheus_config.exists() else None
    if as_json:
        emit_json({"running": True, "bootstrap": state.bootstrap, "processes": rows,
                   "prometheus_config": str(prometheus) if prometheus else None})
    else:
        typer.echo(f"kafka at {state.bootstrap}")
        table(["NAME", Column("PID", "right"), Column("PORT", "right"), "STATE", "URL", "LOG"],
              [(r["name"], r["pid"], r["port"] or "-", "alive" if r["alive"] else "DEAD", r["url"], r["log"]) for r in rows])
        if prometheus:
            typer.echo(f"Prometheus config for these workers: {prometheus}")
    raise typer.Exit(0 if all(r["alive"] for r in rows) else 1)
