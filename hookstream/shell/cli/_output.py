"""Printing for commands: human lines by default, one JSON document with ``--json``."""

from __future__ import annotations

import json
import re
from typing import Any

import typer

JsonOption = typer.Option(False, "--json", help="Print one JSON document (for scripts).")

# C0 controls, DEL and C1 controls: a terminal acts on them (ESC starts CSI/OSC sequences that
# recolour, retitle or plant hyperlinks; 0x9b and 0x9d are one-byte CSI and OSC), so a stored
# string a tenant or an endpoint wrote is shown with them escaped. JSON output needs none of
# this: json.dumps (ensure_ascii) writes every control and every non-ASCII character as \uNNNN.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(value: Any) -> str:
    """``value`` as text safe for a terminal: every C0/C1 control and DEL as ``\\xNN``."""
    text = value if isinstance(value, str) else str(value)
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def emit_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True, default=str))
