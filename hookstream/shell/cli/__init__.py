"""The ``hookstream`` command: one entry point, a subcommand group per part of the pipeline.

The root callback is the bootstrap: it gives every command one ``Settings`` (read from the
environment once, ``_context.settings_of(ctx)``), which the command passes to what it calls.

Errors a user can cause are ``HookstreamError``s: printed as one ``error: ...`` line on stderr,
exit non-zero, no traceback. ``HOOKSTREAM_DEBUG=1`` shows tracebacks for anything unexpected.
"""

from __future__ import annotations

import os
import sys

import typer
from typer.exceptions import TyperException

from hookstream.core.errors import HookstreamError

app = typer.Typer(
    name="hookstream",
    help="Webhook delivery pipeline on Apache Kafka.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _bootstrap(ctx: typer.Context) -> None:
    # One bootstrap for every command: the run's settings live on the context (read on first
    # use: see _context.py); commands take them from there and pass them on.
    from hookstream.shell.cli._context import CliState

    ctx.obj = CliState()


def _register() -> None:
    # Each part of the pipeline owns its commands; they are mounted here.
    from hookstream.shell.cli import _kafka

    app.add_typer(_kafka.kafka_app, name="kafka")
    app.add_typer(_kafka.topics_app, name="topics")
    from hookstream.shell.cli._receive import receive

    app.command("receive")(receive)
    from hookstream.shell.cli.subscriptions import subscriptions_app

    app.add_typer(subscriptions_app, name="subscriptions")
    from hookstream.shell.cli._secrets import secrets_app

    app.add_typer(secrets_app, name="secrets")
    from hookstream.shell.cli.streams import streams_app

    app.add_typer(streams_app, name="streams")
    from hookstream.shell.cli.schemas import schemas_app

    app.add_typer(schemas_app, name="schemas")
    from hookstream.shell.cli.publish import outbox_app, publish_command

    app.command("publish")(publish_command)
    app.add_typer(outbox_app, name="outbox")
    from hookstream.shell.cli._dev import dev_app

    app.add_typer(dev_app, name="dev")
    from hookstream.shell.cli.dlq import dlq_app, replay_app

    app.add_typer(dlq_app, name="dlq")
    app.add_typer(replay_app, name="replay")
    from hookstream.shell.cli._bench import bench_command

    app.command("bench")(bench_command)
    from hookstream.shell.cli._chaos import chaos_command

    app.command("chaos")(chaos_command)
    from hookstream.shell.cli.delivery import deliveries_app, delivery_app

    app.add_typer(delivery_app, name="delivery")
    app.add_typer(deliveries_app, name="deliveries")
    from hookstream.shell.cli.api import register as register_api

    register_api(app)


_register()


def _not_utf8(argv: list[str]) -> str | None:
    """The first argument that is not valid UTF-8 (Python keeps its bytes as lone surrogates)."""
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return arg
    return None


def main(argv: list[str] | None = None) -> int:
    command = typer.main.get_command(app)
    bad = _not_utf8(sys.argv[1:] if argv is None else argv)
    if bad is not None:  # refused here, once, rather than deep inside whichever command gets it
        typer.echo(f"error: argument {ascii(bad)} is not valid UTF-8", err=True)
        return 2
    try:
        # with standalone_mode=False click returns the code of `typer.Exit(code)` instead of exiting
        code = command.main(args=argv, prog_name="hookstream", standalone_mode=False)
    except HookstreamError as exc:
        from hookstream.shell.cli._output import printable

        typer.echo(f"error: {printable(exc)}", err=True)  # messages may quote what a tenant stored
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        return 130
    except TyperException as exc:  # usage errors: typer shows them like click does
        exc.show()
        return getattr(exc, "exit_code", 2)
    except Exception as exc:  # a bug, not a user error: say so in one line unless debugging
        if _is_kafka_error(exc) and not os.environ.get("HOOKSTREAM_DEBUG"):
            # the broker is infrastructure, not a bug: one line naming it (e.g. none is running)
            typer.echo(f"error: Kafka: {_kafka_message(exc)} (is a broker running? `hookstream kafka status`)", err=True)
            return 1
        if os.environ.get("HOOKSTREAM_DEBUG"):
            raise
        typer.echo(f"internal error: {type(exc).__name__}: {exc} (set HOOKSTREAM_DEBUG=1 for a traceback)", err=True)
        return 70
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


def _is_kafka_error(exc: BaseException) -> bool:
    from confluent_kafka import KafkaException

    return isinstance(exc, KafkaException)


def _kafka_message(exc: BaseException) -> str:
    error = exc.args[0] if exc.args else None
    return error.str() if hasattr(error, "str") else str(exc)


def run() -> None:
    sys.exit(main())
