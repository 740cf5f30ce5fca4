"""The `hookstream` entry point: exit codes and one-line errors, whatever the command raises."""

from hookstream.shell.cli import main


def test_usage_error_exits_2_with_usage_not_an_internal_error(capsys):
    assert main(["topics", "list", "--no-such-option"]) == 2
    err = capsys.readouterr().err
    assert "No such option: --no-such-option" in err
    assert "internal error" not in err


def test_exit_code_of_a_command_is_kept(capsys, monkeypatch):
    monkeypatch.setenv("HOOKSTREAM_KAFKA_BOOTSTRAP", "127.0.0.1:9")  # nothing answers there
    assert main(["kafka", "status"]) == 1
    assert "not running" in capsys.readouterr().out


def test_success_exits_0(capsys):
    assert main(["--help"]) == 0


def test_an_argument_that_is_not_utf8_is_one_error_line(capsys):
    # how Python hands over argv bytes that are not UTF-8 (surrogateescape)
    bad = b"sub_\xff".decode("utf-8", "surrogateescape")
    for argv in (["deliveries", "show", bad], ["replay", "events", "--subscription", bad, "--since", "1h"]):
        assert main(argv) == 2
        assert capsys.readouterr().err == "error: argument 'sub_\\udcff' is not valid UTF-8\n"


def test_an_error_message_quoting_stored_text_is_escaped(capsys):
    import typer

    from hookstream.shell.cli import app
    from hookstream.core.errors import NotFoundError

    def fail():
        raise NotFoundError("no subscription named \x1b]0;owned\x07")

    probe = typer.Typer()
    probe.command("probe")(fail)
    app.add_typer(probe, name="probe-errors")
    try:
        assert main(["probe-errors", "probe"]) == 3
    finally:
        app.registered_groups.pop()
    assert capsys.readouterr().err == "error: no subscription named \\x1b]0;owned\\x07\n"


def test_a_kafka_error_is_one_error_line_not_an_internal_error(capsys):
    # what any command raises when no broker answers (`topics list` after its 30 s metadata wait)
    import typer
    from confluent_kafka import KafkaError, KafkaException

    from hookstream.shell.cli import app

    def fail():
        raise KafkaException(KafkaError(KafkaError._TRANSPORT, "Failed to get metadata: Local: Broker transport failure"))

    probe = typer.Typer()
    probe.command("probe")(fail)
    app.add_typer(probe, name="probe-kafka")
    try:
        assert main(["probe-kafka", "probe"]) == 1
    finally:
        app.registered_groups.pop()
    err = capsys.readouterr().err
    assert err.startswith("error: Kafka: Failed to get metadata: Local: Broker transport failure (is a broker running?")
    assert err.count("\n") == 1


def test_streams_worker_refuses_a_metrics_port_out_of_range(capsys):
    assert main(["streams", "worker", "--metrics-port", "99999999999"]) == 2
    assert capsys.readouterr().err == "error: --metrics-port must be from 0 to 65535 (got 99999999999)\n"
