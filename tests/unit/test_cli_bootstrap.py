"""The CLI's one bootstrap: the root callback gives every command the same Settings, read once;
worker options that change a setting default to it."""

import pytest
import typer

from hookstream.core.settings import Settings
from hookstream.shell.cli import app, main
from hookstream.shell.cli._context import settings_of


@pytest.fixture
def probe():
    """A command mounted on the real app that records the settings it is given."""
    seen: list[Settings] = []
    sub = typer.Typer()

    @sub.command("probe")
    def record(ctx: typer.Context) -> None:
        seen.append(settings_of(ctx))
        seen.append(settings_of(ctx))

    app.add_typer(sub, name="probe-settings")
    try:
        yield seen
    finally:
        app.registered_groups.pop()


def test_a_command_gets_one_settings_object_read_from_the_environment(probe, monkeypatch):
    monkeypatch.setenv("HOOKSTREAM_TOPIC_PREFIX", "boot.")
    assert main(["probe-settings", "probe"]) == 0
    assert probe[0] is probe[1] and probe[0].topic_prefix == "boot."


def test_a_bad_variable_is_one_error_line_for_commands_that_read_settings(monkeypatch, capsys):
    monkeypatch.setenv("HOOKSTREAM_ENDPOINT_BACKLOG", "lots")
    assert main(["deliveries", "list"]) == 2
    assert capsys.readouterr().err == "error: HOOKSTREAM_ENDPOINT_BACKLOG: 'lots' is not a whole number from 1 to 1000000\n"


def test_help_and_commands_without_settings_work_whatever_the_variables(monkeypatch, capsys):
    monkeypatch.setenv("HOOKSTREAM_METRICS_PORT", "http")
    assert main(["schemas", "list"]) == 0
    assert main(["delivery", "worker", "--help"]) == 0
    assert "--concurrency" in capsys.readouterr().out


@pytest.fixture
def worker_args(monkeypatch, tmp_path):
    """What `hookstream delivery worker` would start the worker with (the worker itself is not run)."""
    import hookstream.shell.cli.delivery as delivery_cli

    monkeypatch.setenv("HOOKSTREAM_STATE_DIR", str(tmp_path))
    got: dict = {}
    monkeypatch.setattr(delivery_cli, "_run_worker", lambda settings, **kw: got.update(kw, settings=settings))
    return got


def test_worker_bounds_default_to_the_settings(worker_args):
    assert main(["delivery", "worker"]) == 0
    defaults = Settings()
    assert worker_args["concurrency"] == defaults.delivery_concurrency
    assert worker_args["limits"].endpoint_concurrency == defaults.endpoint_concurrency
    assert worker_args["limits"].endpoint_backlog == defaults.endpoint_backlog


def test_worker_bounds_come_from_the_environment_and_options_win(worker_args, monkeypatch):
    monkeypatch.setenv("HOOKSTREAM_DELIVERY_CONCURRENCY", "300")
    monkeypatch.setenv("HOOKSTREAM_ENDPOINT_CONCURRENCY", "4")
    monkeypatch.setenv("HOOKSTREAM_ENDPOINT_BACKLOG", "40")
    assert main(["delivery", "worker"]) == 0
    assert (worker_args["concurrency"], worker_args["limits"].endpoint_concurrency, worker_args["limits"].endpoint_backlog) == (300, 4, 40)
    assert main(["delivery", "worker", "--concurrency", "9", "--endpoint-backlog", "50"]) == 0
    assert (worker_args["concurrency"], worker_args["limits"].endpoint_concurrency, worker_args["limits"].endpoint_backlog) == (9, 4, 50)


def test_a_worker_option_out_of_range_names_the_option(worker_args, capsys):
    assert main(["delivery", "worker", "--concurrency", "0"]) == 2
    assert capsys.readouterr().err == "error: --concurrency must be from 1 to 1000000 (got 0)\n"
    assert worker_args == {}
