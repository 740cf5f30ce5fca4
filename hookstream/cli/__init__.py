"""The ``hookstream`` command: one entry point, a subcommand group per part of the pipeline.

Errors a user can cause are ``HookstreamError``s: printed as one ``error: ...`` line on stderr,
exit non-zero, no traceback. ``HOOKSTREAM_DEBUG=1`` shows tracebacks for anything unexpected.
"""

from __future__ import annotations

import os
import sys

import click
import typer

from hookstream.errors import HookstreamError

try:  # typer 0.2x runs its own copy of click: its exceptions are not click's
    from typer._click import exceptions as _typer_click

    _USAGE_ERRORS: tuple[type[Exception], ...] = (click.ClickException, _typer_click.ClickException)
except ImportError:  # older typer on click itself
    _USAGE_ERRORS = (click.ClickException,)

app = typer.Typer(
    name="hookstream",
    help="Webhook delivery pipeline on Apache Kafka.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Each part of the pipeline owns its commands; they are mounted here.
    from hookstream.cli import _kafka

    app.add_typer(_kafka.kafka_app, name="kafka")
    app.add_typer(_kafka.topics_app, name="topics")
    from schemas.cli import schemas_app

    app.add_typer(schemas_app, name="schemas")
    from producers.cli import outbox_app, publish_command

    app.command("publish")(publish_command)
    app.add_typer(outbox_app, name="outbox")


_register()


def main(argv: list[str] | None = None) -> int:
    command = typer.main.get_command(app)
    try:
        # without standalone mode, `raise typer.Exit(n)` comes back as the return value n
        result = command.main(args=argv, prog_name="hookstream", standalone_mode=False)
    except HookstreamError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except (click.exceptions.Exit, typer.Exit) as exc:
        return exc.exit_code
    except _USAGE_ERRORS as exc:
        exc.show()
        return exc.exit_code
    except (click.Abort, typer.Abort, KeyboardInterrupt):
        click.echo("aborted", err=True)
        return 130
    except Exception as exc:  # a bug, not a user error: say so in one line unless debugging
        if os.environ.get("HOOKSTREAM_DEBUG"):
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc} (set HOOKSTREAM_DEBUG=1 for a traceback)", err=True)
        return 70
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def run() -> None:
    sys.exit(main())
