"""The `hookstream` entry point: exit codes and one-line errors, whatever the command raises."""

from hookstream.cli import main


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
