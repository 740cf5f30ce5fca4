"""Credentials for ``subscriptions`` commands read from a file (``@path``) or standard input (``-``)."""

import io

import pytest

import hookstream.shell.cli  # noqa: F401  (the CLI package first: it mounts subscriptions.cli)
from hookstream.core.errors import ValidationError
from hookstream.shell.cli.subscriptions import _headers, _Reader

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_a_value_is_read_from_a_file_without_its_trailing_newline(tmp_path):
    (tmp_path / "s").write_text(SECRET + "\n")
    assert _Reader().value(f"@{tmp_path / 's'}", "secret") == SECRET


def test_a_value_is_read_from_standard_input(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("Bearer from-stdin\r\n"))
    assert _headers(["Authorization: -"]) == {"Authorization": "Bearer from-stdin"}


def test_a_plain_value_is_taken_as_it_is():
    assert _Reader().value(SECRET, "secret") == SECRET and _Reader().value(None, "secret") is None


def test_standard_input_is_read_once_per_command(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("a"))
    reader = _Reader()
    reader.value("-", "secret")
    with pytest.raises(ValidationError, match="header X: standard input is already read for secret"):
        _headers(["X: -"], reader)


@pytest.mark.parametrize(
    ("content", "needle"),
    [(None, "cannot read"), ("", "is empty"), ("\n\n", "is empty"), ("one\ntwo\n", "more than one line")],
)
def test_a_file_that_cannot_give_one_value_is_a_clear_error_that_never_quotes_it(tmp_path, content, needle):
    path = tmp_path / "v"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValidationError) as caught:
        _headers([f"Authorization: @{path}"])
    assert needle in str(caught.value) and str(caught.value).startswith("header Authorization:")
    assert "two" not in str(caught.value)
