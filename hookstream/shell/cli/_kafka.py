"""``hookstream kafka ...`` (the local broker) and ``hookstream topics ...``."""

from __future__ import annotations

import typer

from hookstream.shell.broker import MAX_BROKERS, ClusterStatus, LocalCluster, fetch_jars
from hookstream.shell.cli._output import Column, JsonOption, emit_json, table
from hookstream.core.topics import describe, ensure_topics, replicas, replication_config, topic_specs
from hookstream.shell.cli._context import settings_of

kafka_app = typer.Typer(help="Run a local Apache Kafka broker (KRaft, jars from Maven Central).", no_args_is_help=True)
topics_app = typer.Typer(help="Create and inspect the pipeline's topics.", no_args_is_help=True)


@kafka_app.command("fetch")
def kafka_fetch(ctx: typer.Context) -> None:
    """Download the broker's jars from Maven Central into the cache (once)."""
    settings = settings_of(ctx)
    typer.echo(f"Kafka {settings.kafka_version} jars in {fetch_jars(settings)}")


START_HELP = (
    "Start the local Kafka in the background; returns once every node answers a metadata request.\n\n"
    "Ports (P: the port of HOOKSTREAM_KAFKA_BOOTSTRAP, 9092 by default): one node listens on P and its KRaft "
    "controller on P+1. With --brokers 3, nodes 1, 2 and 3 listen on P, P+1 and P+2 and their controllers on "
    "P+3, P+4 and P+5 (N nodes: P..P+N-1 and P+N..P+2N-1); every node is broker and controller, the controllers "
    "one static quorum.\n\n"
    "Point clients at every node (a cluster's start prints the HOOKSTREAM_KAFKA_BOOTSTRAP to export). status, "
    "stop and reset find a cluster by themselves; start without --brokers starts whatever the state dir holds "
    "at P (one node in a new one)."
)


def _local(settings, brokers: int | None = None) -> LocalCluster:
    """The cluster asked for, else whichever the state dir holds at this port (one node if none)."""
    cluster = LocalCluster(settings, brokers) if brokers else LocalCluster.discover(settings)
    if brokers:
        cluster.check_layout()
    return cluster


def _nodes_table(cluster: LocalCluster, st: ClusterStatus) -> None:
    table(["NODE", "ADDRESS", "CONTROLLER", Column("PID", "right"), "STATUS"], [
        (n.node_id, cluster.nodes[n.node_id].address, cluster.nodes[n.node_id].controller_port, n.pid,
         "answering" if n.alive else ("not answering" if n.pid else "down"))
        for n in st.brokers
    ])


@kafka_app.command("start", help=START_HELP)
def kafka_start(
    ctx: typer.Context,
    brokers: int = typer.Option(None, "--brokers", min=1, max=MAX_BROKERS, show_default=False,
                                help="Nodes to run: 1 (default for a new state dir) or a replicated cluster of 3 (up to 5)."),
) -> None:
    settings = settings_of(ctx)
    cluster = _local(settings, brokers)
    before = cluster.status(timeout=2.0)
    if cluster.size == 1:
        if before.running:
            pid = before.brokers[0].pid
            who = f"pid {pid}" if pid else "not started by hookstream"
            typer.echo(f"Kafka is already running at {settings.kafka_bootstrap} ({who})")
            return
        st = cluster.start()
        node = cluster.nodes[1]
        typer.echo(f"Kafka {settings.kafka_version} is running at {settings.kafka_bootstrap} "
                   f"(pid {st.brokers[0].pid}, data {node.paths.data})")
        return
    if before.running:
        typer.echo(f"Kafka is already running: {cluster.size} nodes at {cluster.bootstrap}")
        st = before
    else:
        st = cluster.start()
        typer.echo(f"Kafka {settings.kafka_version} is running: {cluster.size} nodes at {cluster.bootstrap} (data under {cluster.root})")
    _nodes_table(cluster, st)
    typer.echo(f"export HOOKSTREAM_KAFKA_BOOTSTRAP={cluster.bootstrap}")


@kafka_app.command("status")
def kafka_status(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Exit 0 when the local Kafka runs and every node answers, 1 otherwise."""
    settings = settings_of(ctx)
    cluster = _local(settings)
    st = cluster.status()
    single = cluster.size == 1
    bootstrap = settings.kafka_bootstrap if single else cluster.bootstrap
    if as_json:
        doc = {"bootstrap": bootstrap, "answering": st.answering, "running": st.running,
               "brokers": [n.as_dict() for n in st.brokers]}
        if single:
            doc.update(pid=st.brokers[0].pid, answering=st.brokers[0].alive, data_dir=str(cluster.nodes[1].paths.data))
        else:
            doc.update(data_dir=str(cluster.root))
        emit_json(doc)
    elif single:
        pid, node = st.brokers[0].pid, cluster.nodes[1]
        if st.running:
            typer.echo(f"running at {bootstrap}" + (f" (pid {pid})" if pid else " (not started by hookstream)"))
        elif pid:
            typer.echo(f"pid {pid} is alive but does not answer at {bootstrap}; see {node.paths.server_log}")
        else:
            typer.echo(f"not running (nothing answers at {bootstrap})")
    else:
        up = sum(n.alive for n in st.brokers)
        if st.running:
            typer.echo(f"running: {cluster.size} nodes at {bootstrap}")
        elif up:
            typer.echo(f"degraded: {up} of {cluster.size} nodes answer at {bootstrap}; `hookstream kafka start` restarts the others")
        else:
            typer.echo(f"not running (no node of the {cluster.size}-node cluster answers at {bootstrap})")
        _nodes_table(cluster, st)
    raise typer.Exit(0 if st.running else 1)


@kafka_app.command("stop")
def kafka_stop(ctx: typer.Context) -> None:
    """Stop the local Kafka started by `hookstream kafka start` (every node) and wait for it to exit."""
    settings = settings_of(ctx)
    cluster = _local(settings)
    where = settings.kafka_bootstrap if cluster.size == 1 else f"{cluster.bootstrap} ({cluster.size} nodes)"
    if cluster.stop():
        typer.echo(f"stopped the broker at {where}" if cluster.size == 1 else f"stopped the cluster at {where}")
    else:
        typer.echo(f"no broker started by hookstream is running at {where}")


@kafka_app.command("reset")
def kafka_reset(ctx: typer.Context, yes: bool = typer.Option(False, "--yes", help="Do not ask.")) -> None:
    """Stop the local Kafka and delete its data (every topic and offset; every node's)."""
    cluster = _local(settings_of(ctx))
    what = str(cluster.nodes[1].paths.data) if cluster.size == 1 else f"the data of the {cluster.size} nodes under {cluster.root}"
    if not yes:
        typer.confirm(f"Delete {what}?", abort=True)
    cluster.reset()
    typer.echo(f"deleted {what}")


@topics_app.command("ensure")
def topics_ensure(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Create every topic the pipeline uses (idempotent); report topics configured differently."""
    settings = settings_of(ctx)
    report = ensure_topics(settings)
    if as_json:
        emit_json({"created": report.created, "unchanged": report.unchanged, "differences": report.differences,
                   "raised_partitions": report.raised})
    else:
        table(["STATUS", "TOPIC"], [("created", name) for name in report.created]
              + [("ok", name) for name in report.unchanged if name not in report.raised]
              + [(f"ok ({count} partitions, raised)", name) for name, count in report.raised.items()])
        if report.differences:
            table(["STATUS", "TOPIC", "DIFFERENCES"], [("DIFFERS", name, "; ".join(diffs)) for name, diffs in report.differences.items()],
                  err=True)
    if report.differences:
        typer.echo(
            f"error: {len(report.differences)} topic(s) exist with a configuration other than declared; "
            "alter them with kafka-configs (replicas: kafka-reassign-partitions) or recreate them",
            err=True,
        )
        raise typer.Exit(1)


@topics_app.command("list")
def topics_list(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Show the pipeline's topics with partitions and configuration."""
    settings = settings_of(ctx)
    specs = topic_specs(settings)
    actual = describe(settings, [s.name for s in specs])
    replicated = replicas(settings, [s.name for s in specs])
    rows = []
    for spec in specs:
        full = settings.topic(spec.name)
        partitions, config = actual.get(full, (None, {}))
        shown = {k: config.get(k) for k in [*spec.config, *replication_config(1)]}
        rows.append({"topic": full, "exists": full in actual, "partitions": partitions, "replicas": replicated.get(full),
                     "config": shown, "purpose": spec.purpose})
    if as_json:
        emit_json(rows)
        return
    table(["TOPIC", Column("PARTITIONS", "right"), Column("REPLICAS", "right"), "CONFIG"], [
        (r["topic"], r["partitions"] if r["exists"] else "missing", r["replicas"],
         " ".join(f"{k}={v}" for k, v in r["config"].items()))
        for r in rows
    ])
