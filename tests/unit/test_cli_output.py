"""hookstream.shell.cli._output: stored strings reach a terminal with every control character escaped."""

import json

import pytest

from hookstream.shell.cli._output import emit_json, printable


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("ev\x1b]8;;https://evil.example/\x07CLICK", "ev\\x1b]8;;https://evil.example/\\x07CLICK"),  # OSC 8 hyperlink
        ("ev\x1b[31m", "ev\\x1b[31m"),  # CSI colour
        ("a\x00b\nc\rd\te", "a\\x00b\\x0ac\\x0dd\\x09e"),  # C0, line breaks included: one record, one line
        ("del\x7f", "del\\x7f"),
        ("c1\x9b31m\x9d0;t\x9c\x85", "c1\\x9b31m\\x9d0;t\\x9c\\x85"),  # one-byte CSI, OSC, ST, NEL
    ],
)
def test_printable_escapes_c0_c1_and_del(stored, shown):
    assert printable(stored) == shown
    assert all(not (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F) for c in printable(stored))


def test_printable_keeps_printable_text_and_formats_other_values():
    assert printable("sub_1 café ✓ {\"a\": 1}") == "sub_1 café ✓ {\"a\": 1}"
    assert printable(404) == "404" and printable(None) == "None"
    assert printable(ValueError("bad\x1b[2J")) == "bad\\x1b[2J"


def test_json_output_escapes_control_characters_itself(capsys):
    emit_json({"event_id": "ev\x1b]0;owned\x07\x9b\x7f"})
    out = capsys.readouterr().out
    assert json.loads(out) == {"event_id": "ev\x1b]0;owned\x07\x9b\x7f"}
    assert not any(ord(c) < 0x20 and c != "\n" or 0x7F <= ord(c) <= 0x9F for c in out)
