"""``hookstream bench``: end-to-end speed on this machine (see ``hookstream.bench``)."""

from __future__ import annotations

from pathlib import Path

import typer

from hookstream.shell.cli._output import Column, JsonOption, emit_json, progress, table
from hookstream.core.errors import ValidationError

_SCENARIOS = ("throughput", "latency", "fanout", "isolation")


def bench_command(
    quick: bool = typer.Option(False, "--quick", help="Small counts and short runs (under 2 minutes in all)."),
    as_json: bool = JsonOption,
    port: int = typer.Option(19592, "--port", help="Port of the fresh broker (its controller takes the next one); with --brokers N, of the first: N brokers take this port and the 2N-1 after it."),
    brokers: int = typer.Option(1, "--brokers", help="1: a fresh single-node broker; 3: a fresh three-node cluster (topics replicated 3 times, min.insync.replicas 2)."),
    state_dir: Path = typer.Option(Path("/tmp/hs-bench"), "--state-dir", help="Deleted and made anew: broker data, database, logs."),
    events: int = typer.Option(None, "--events", help="Events in the throughput scenario (fan-out 1)."),
    warmup_events: int = typer.Option(None, "--warmup-events", help="Events pushed through the pipeline before the scenarios, not measured (default 100,000, quick 1,000; 0: none)."),
    rate: int = typer.Option(1000, "--rate", help="Offered deliveries/s in the latency and isolation scenarios."),
    duration: float = typer.Option(None, "--duration", help="Seconds of offered load in the latency scenario."),
    stream_workers: int = typer.Option(1, "--stream-workers", help="hookstream streams worker processes."),
    delivery_workers: int = typer.Option(None, "--delivery-workers", help="hookstream delivery worker processes (default: one per core)."),
    request_timeout: float = typer.Option(None, "--request-timeout", help="Seconds before a hung request is given up (default 5, quick 2)."),
    baseline: bool = typer.Option(True, "--baseline/--no-baseline", help="Also run the Celery + Redis design (one task per delivery)."),
    baseline_events: int = typer.Option(None, "--baseline-events", help="Events in the baseline's throughput scenario."),
    scenario: list[str] = typer.Option(None, "--scenario", help="Only these hookstream scenarios (repeatable): throughput, latency, fanout, isolation."),
    profile: Path = typer.Option(None, "--profile", help="py-spy the workers during the throughput scenario; raw stacks into this dir."),
) -> None:
    """Measure end-to-end throughput, latency, fan-out and isolation, side by side with Celery."""
    from hookstream.shell.bench import BenchConfig, report_rows, run

    overrides = {k: v for k, v in dict(
        port=port, brokers=brokers, state_dir=state_dir, events=events, warmup_events=warmup_events, rate=rate, duration=duration, stream_workers=stream_workers,
        delivery_workers=delivery_workers, request_timeout=request_timeout, baseline=baseline,
        baseline_events=baseline_events, profile_dir=profile,
    ).items() if v is not None}
    if scenario:
        unknown = [s for s in scenario if s not in _SCENARIOS]
        if unknown:
            raise ValidationError(f"--scenario: {', '.join(unknown)} is not one of {', '.join(_SCENARIOS)}")
        overrides["scenarios"] = tuple(scenario)
    if overrides.get("warmup_events", 0) < 0:
        raise ValidationError("--warmup-events must be 0 or more")
    for name in ("events", "rate", "stream_workers", "delivery_workers", "brokers"):
        if name in overrides and overrides[name] < 1:
            raise ValidationError(f"--{name.replace('_', '-')} must be at least 1")
    if not 1 <= port <= 65535 - 2 * brokers + 1:
        raise ValidationError(f"--port {port} with {brokers} broker(s) needs ports {port}-{port + 2 * brokers - 1}, outside 1-65535")
    cfg = BenchConfig.quick(**overrides) if quick else BenchConfig(**overrides)
    from hookstream.core.settings import Settings
    from hookstream.shell.devstack import idle_workers

    for line in idle_workers(Settings.from_env({"HOOKSTREAM_STATE_DIR": str(state_dir)}),
                             stream_workers=cfg.stream_workers, delivery_workers=cfg.delivery_workers):
        typer.echo(line, err=True)
    if as_json:
        emit_json(run(cfg, progress=None))
        return
    with progress() as report_progress:
        report = run(cfg, progress=report_progress)
    heading, rows, notes = report_rows(report)
    typer.echo(heading)
    typer.echo("")
    table(["SCENARIO", Column("FIGURE", "right"), "TARGET"], rows)
    if notes:
        typer.echo("")
    for line in notes:
        typer.echo(line)
