"""``hookstream schemas ...``: the event types, their JSON Schemas and example data."""

from __future__ import annotations

import json
from typing import Any

import typer

from hookstream.shell.cli._output import JsonOption, emit_json, table
from hookstream.core.topics import event_topic_for
from hookstream.schemas._catalog import CURRENT_VERSIONS, EVENT_TYPES, example, get_schema, json_schema

schemas_app = typer.Typer(help="The event types, their JSON Schemas and example data.", no_args_is_help=True)


def _print(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


@schemas_app.command("list")
def schemas_list(as_json: bool = JsonOption) -> None:
    """Every event type with its current version, topic and key field."""
    rows = []
    for event_type in EVENT_TYPES:
        schema = get_schema(event_type)
        rows.append({
            "type": event_type, "version": CURRENT_VERSIONS[event_type], "topic": event_topic_for(event_type),
            "key": schema.entity_field, "description": schema.description,
        })
    if as_json:
        emit_json(rows)
        return
    table(["TYPE", "VERSION", "TOPIC", "KEY", "DESCRIPTION"],
          [(r["type"], f"v{r['version']}", r["topic"], r["key"], r["description"]) for r in rows])


@schemas_app.command("show")
def schemas_show(
    event_type: str = typer.Argument(..., metavar="TYPE", help="An event type, e.g. payment.received."),
    version: int = typer.Option(None, "--version", help="A published version (default: the current one)."),
) -> None:
    """The JSON Schema (2020-12) of a whole event of TYPE: envelope and data."""
    _print(json_schema(event_type, version))


@schemas_app.command("example")
def schemas_example(event_type: str = typer.Argument(..., metavar="TYPE", help="An event type, e.g. invoice.sent.")) -> None:
    """A valid example `data` object for TYPE (use it with `hookstream publish --data`)."""
    _print(example(event_type))
