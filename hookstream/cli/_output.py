"""Printing for commands: human lines by default, one JSON document with ``--json``."""

from __future__ import annotations

import json
from typing import Any

import typer

JsonOption = typer.Option(False, "--json", help="Print one JSON document (for scripts).")


def emit_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True, default=str))
