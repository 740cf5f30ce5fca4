"""`hookstream publish`: bad input exits non-zero with one line naming the problem, before any connection."""

import json

import pytest

from hookstream.shell.cli import main
from hookstream.schemas import example


@pytest.fixture(autouse=True)
def no_broker(monkeypatch, tmp_path):
    # nothing listens here: any attempt to publish would time out instead of failing fast
    monkeypatch.setenv("HOOKSTREAM_KAFKA_BOOTSTRAP", "127.0.0.1:9")
    monkeypatch.setenv("HOOKSTREAM_STATE_DIR", str(tmp_path))


def _publish(capsys, *args):
    code = main(["publish", *args])
    captured = capsys.readouterr()
    return code, captured.err, captured.out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tenant", "acme", "--type", "invoice.paid", "--data", "{}"],
         "error: unknown event type 'invoice.paid' (known: see `hookstream schemas list`)"),
        (["--tenant", "acme", "--type", "invoice.sent", "--data", "{not json"],
         "error: --data is not JSON: unexpected character, expected a string key: line 1 column 2 (char 1)"),
        (["--tenant", "acme", "--type", "invoice.sent", "--data", "[1, 2]"],
         "error: --data must be a JSON object (the event's data)"),
        (["--tenant", "", "--type", "invoice.sent", "--data", json.dumps(example("invoice.sent"))],
         "error: invoice.sent: tenant_id must not be empty"),
        (["--tenant", "acme", "--type", "invoice.sent", "--data", json.dumps({**example("invoice.sent"), "channel": None})],
         "error: invoice.sent: data.channel must be one of email, post, portal, edi, e_invoicing_network (got null)"),
        (["--tenant", "acme", "--type", "payment.failed", "--data", json.dumps(example("payment.received"))],
         "error: payment.failed: data.failure_code is required (and 3 more problems)"),
        (["--tenant", "acme", "--type", "invoice.sent", "--data", "@/nonexistent/event.json"],
         "error: --data: cannot read /nonexistent/event.json: No such file or directory"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, args, message):
    code, err, out = _publish(capsys, *args)
    assert (code, err, out) == (2, message + "\n", "")


def test_a_missing_option_is_a_usage_error(capsys):
    code, err, _ = _publish(capsys, "--type", "invoice.sent", "--data", "{}")
    assert code == 2
    assert "--tenant" in err
    assert "Traceback" not in err


def test_unreachable_broker_is_one_error_line_and_exit_1(capfd):
    code = main(["publish", "--tenant", "acme", "--type", "invoice.sent", "--data", json.dumps(example("invoice.sent")),
                 "--timeout", "1"])
    captured = capfd.readouterr()  # file descriptors: librdkafka writes its own log lines to fd 2
    assert code == 1
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("error: event ") and "is the broker at 127.0.0.1:9 up? (_MSG_TIMED_OUT)" in line


def test_an_event_over_the_size_limit_exits_2_with_one_line_naming_size_and_limit(capfd, monkeypatch, tmp_path):
    from tests.sizes import invoice_of_size

    monkeypatch.setenv("HOOKSTREAM_MAX_EVENT_BYTES", "4096")
    data = tmp_path / "invoice.json"
    data.write_text(json.dumps(invoice_of_size("acme", 5000).data))
    # no broker answers: reaching the producer would end in a timeout (exit 1), not this refusal
    code = main(["publish", "--tenant", "acme", "--type", "invoice.created", "--data", f"@{data}", "--timeout", "1"])
    captured = capfd.readouterr()
    assert (code, captured.out) == (2, "")
    [line] = captured.err.splitlines()
    assert line.startswith("error: event ") and "(invoice.created) is " in line
    assert "bytes serialised, over the limit of 4096 bytes (HOOKSTREAM_MAX_EVENT_BYTES); nothing was sent" in line


@pytest.mark.parametrize("timeout", ["-1", "0", "nan", "inf", "-inf", "1e300", "0.05"])
def test_a_timeout_that_is_not_a_usable_number_of_seconds_is_refused_before_connecting(timeout, capsys, monkeypatch):
    from hookstream.shell.cli import publish as publish_cli

    def no_publisher(*args, **kwargs):
        raise AssertionError("a Publisher was built for a bad --timeout")

    monkeypatch.setattr(publish_cli, "Publisher", no_publisher)
    code, err, out = _publish(capsys, "--tenant", "acme", "--type", "invoice.sent", "--data", json.dumps(example("invoice.sent")),
                              "--timeout", timeout)
    assert code == 2 and out == ""
    assert err.startswith("error: --timeout: ") and "is not a number of seconds from 0.1 to 2.14748e+06" in err
    assert err.count("\n") == 1


def test_an_id_with_control_characters_is_refused_naming_the_field(capsys):
    code, err, _ = _publish(capsys, "--tenant", "acme", "--type", "invoice.sent", "--data", json.dumps(example("invoice.sent")),
                            "--correlation-id", "req\x1b]0;owned\x07")
    assert code == 2
    assert err == ("error: invoice.sent: correlation_id must be 1-128 printable ASCII characters, no spaces or control "
                   "characters (got 'req\\x1b]0;owned\\x07')\n")


@pytest.mark.parametrize("interval", ["0s", "0ms", "2d", "99999999999999999999999d"])
def test_an_outbox_poll_interval_out_of_range_is_a_one_line_error(interval, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HOOKSTREAM_DATABASE_URL", f"sqlite:///{tmp_path / 'o.db'}")
    assert main(["outbox", "relay", "--poll-interval", interval]) == 2
    assert capsys.readouterr().err == f"error: --poll-interval: {interval!r} is not from 10ms to 1d\n"
