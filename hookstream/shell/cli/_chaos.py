"""``hookstream chaos``: the fault suite (see ``hookstream.shell.chaos``)."""

from __future__ import annotations

from pathlib import Path

import typer

from hookstream.core.errors import ValidationError
from hookstream.shell.cli._output import Column, JsonOption, emit_json, table


def chaos_command(
    scenarios: list[str] = typer.Argument(None, metavar="SCENARIO",
                                          help="broker-restart, worker-kill, rolling-restart, receiver-outage, cluster-leaders (default: all)."),
    size: str = typer.Option("short", "--size", help="short (a few hundred events a scenario, ~100/s) or long (~200/s, minute-long outages)."),
    as_json: bool = JsonOption,
    state_dir: Path = typer.Option(Path("/tmp/hs-chaos"), "--state-dir", help="Deleted and made anew: brokers, databases, logs."),
) -> None:
    """Inject faults into a running pipeline (fresh brokers, real workers and receivers) and check nothing is lost."""
    from hookstream.shell.chaos import SCENARIOS, SIZES, TABLE_COLUMNS, run, table_rows

    names = list(scenarios or SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ValidationError(f"scenario {', '.join(unknown)} is not one of {', '.join(SCENARIOS)}")
    if size not in SIZES:
        raise ValidationError(f"--size: {size!r} is not one of {', '.join(SIZES)}")
    say = None if as_json else (lambda msg: typer.echo(msg, err=True))
    results = run(names, size, state_dir, progress=say)
    failed = [r for r in results if not r.ok]
    if as_json:
        emit_json({"size": size, "ok": not failed, "scenarios": [r.to_dict() for r in results]})
    else:
        right = {"FLOWING AGAIN", "CAUGHT UP", "EVENTS", "PAIRS", "DELIVERED", "DLQ", "DUPLICATES", "WORST LATENCY", "TOTAL"}
        table([Column(c, "right") if c in right else c for c in TABLE_COLUMNS], table_rows(results))
        for r in failed:
            typer.echo(f"\n{r.scenario}: {len(r.problems)} problems (logs: {r.logs})")
            for p in r.problems[:20]:
                typer.echo(f"  {p}")
    if failed:
        raise typer.Exit(1)
