"""`hookstream schemas list|show|example`, and one-line errors for unknown types."""

import json

import pytest

from hookstream.shell.cli import main
from hookstream.schemas import EVENT_TYPES, json_schema, validate_data


def test_list_shows_every_type_with_topic_and_key(capsys):
    assert main(["schemas", "list"]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header.split() == ["TYPE", "VERSION", "TOPIC", "KEY", "DESCRIPTION"]
    assert [line.split()[0] for line in lines] == list(EVENT_TYPES)
    assert lines[4].split()[2:4] == ["events.sales_order", "order_id"]


def test_list_as_json(capsys):
    assert main(["schemas", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0] == {**rows[0], "type": "payment.received", "version": 1, "topic": "events.payment", "key": "payment_id"}


@pytest.mark.parametrize("event_type", ["payment.failed", "invoice.authorized"])
def test_show_prints_the_json_schema(capsys, event_type):
    assert main(["schemas", "show", event_type]) == 0
    assert json.loads(capsys.readouterr().out) == json_schema(event_type)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_example_prints_valid_data(capsys, event_type):
    assert main(["schemas", "example", event_type]) == 0
    validate_data(event_type, json.loads(capsys.readouterr().out))


@pytest.mark.parametrize("command", ["show", "example"])
def test_unknown_type_is_one_error_line_and_exit_2(capsys, command):
    assert main(["schemas", command, "invoice.paid"]) == 2
    captured = capsys.readouterr()
    assert captured.err == "error: unknown event type 'invoice.paid' (known: see `hookstream schemas list`)\n"
    assert captured.out == ""
