"""`hookstream publish --data` nested deeper than events may be: one error line and exit 2 (it was an
internal RecursionError, exit 70), before any connection."""

import json

import pytest

from hookstream.shell.cli import main
from hookstream.schemas import example


@pytest.fixture(autouse=True)
def no_broker(monkeypatch, tmp_path):
    monkeypatch.setenv("HOOKSTREAM_KAFKA_BOOTSTRAP", "127.0.0.1:9")  # nothing listens: publishing would time out
    monkeypatch.setenv("HOOKSTREAM_STATE_DIR", str(tmp_path))


def _publish_file(capsys, tmp_path, text: str):
    path = tmp_path / "deep.json"
    path.write_text(text)
    code = main(["publish", "--tenant", "acme", "--type", "payment.received", "--data", f"@{path}"])
    captured = capsys.readouterr()
    return code, captured.err, captured.out


@pytest.mark.parametrize("levels", [40, 1000])
def test_data_nested_deeper_than_events_may_be_is_one_line_and_exit_2(capsys, tmp_path, levels):
    text = json.dumps(example("payment.received"))[:-1] + ', "reference2": ' + "[" * levels + "]" * levels + "}"
    assert _publish_file(capsys, tmp_path, text) == (
        2, "error: payment.received: data.reference2 is nested more than 32 levels deep (objects and arrays)\n", "")


def test_data_nested_deeper_than_json_reads_is_not_json(capsys, tmp_path):
    code, err, out = _publish_file(capsys, tmp_path, '{"a": ' + "[" * 1100 + "]" * 1100 + "}")
    assert (code, out) == (2, "")
    assert err.startswith("error: --data is not JSON: ") and err.count("\n") == 1
