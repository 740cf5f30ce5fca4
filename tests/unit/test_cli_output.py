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


# ---------------------------------------------------------------- tables and progress

import io  # noqa: E402

from rich import box  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from hookstream.shell.cli import _output  # noqa: E402
from hookstream.shell.cli._output import Column, plain_table, progress, table  # noqa: E402

HOSTILE = "ev\x1b]8;;https://evil.example/\x07CLICK\x1b[31m\x9b2J"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _raw_controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F]


def test_plain_tables_are_laid_out_as_rich_lays_out_a_table_without_a_box():
    columns = [Column("ID"), Column("N", "right"), Column("NOTE")]
    cells = [["sub_1", "7", "café ✓ 東京"], ["sub_22222", "1234", ""], ["x", "-", "[bold]not markup[/]"]]
    rich_table = Table(box=None, pad_edge=False)
    for c in columns:
        rich_table.add_column(c.header, justify=c.justify)
    for row in cells:
        rich_table.add_row(*row)
    out = io.StringIO()
    Console(file=out, width=500, color_system=None, markup=False, emoji=False, highlight=False).print(rich_table)
    assert plain_table(columns, cells) == [line.rstrip() for line in out.getvalue().splitlines()]


def test_a_table_on_a_pipe_is_plain_text_with_stored_strings_escaped(capsys):
    table(["ID", Column("ATTEMPTS", "right"), "REASON"], [("sub_1", 3, HOSTILE), ("sub_2", None, ":smile: [red]x[/red]")])
    out = capsys.readouterr().out
    assert _raw_controls(out) == [] and "\x1b" not in out
    assert not any(0x2500 <= ord(c) <= 0x257F for c in out)  # no box drawing
    assert out.splitlines() == [
        "ID     ATTEMPTS  REASON",
        "sub_1         3  ev\\x1b]8;;https://evil.example/\\x07CLICK\\x1b[31m\\x9b2J",
        "sub_2         -  :smile: [red]x[/red]",
    ]


def test_a_table_on_a_terminal_is_rich_and_still_escapes_stored_strings(monkeypatch):
    tty = _Tty()
    monkeypatch.setattr(_output.sys, "stdout", tty)
    table(["ID", "REASON"], [("sub_1", HOSTILE), ("sub_2", "[bold]x[/bold] :smile:")])
    out = tty.getvalue()
    # rich's own styling is the only escape sequence: SGR (ESC [ ... m), nothing a tenant wrote
    assert "ev\\x1b]8;;https://evil.example/\\x07CLICK\\x1b[31m\\x9b2J" in out
    assert "[bold]x[/bold] :smile:" in out
    assert "\x1b]" not in out and "\x07" not in out and "\x9b" not in out
    assert "─" in out  # the rule under the header


def test_a_long_table_on_a_terminal_falls_back_to_the_plain_layout(monkeypatch):
    tty = _Tty()
    monkeypatch.setattr(_output.sys, "stdout", tty)
    monkeypatch.setattr(_output, "RICH_MAX_ROWS", 2)
    table(["ID"], [("a",), ("b",), ("c",)])
    assert tty.getvalue() == "ID\na\nb\nc\n"


def test_progress_off_a_terminal_is_one_line_per_step(capsys):
    with progress() as report:
        for i in range(0, 301, 100):
            report("throughput", i, 300)
        report("latency \x1b[2J", 5, 10)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "throughput 300/300\nlatency \\x1b[2J 5/10\n"


def test_progress_on_a_terminal_is_a_rich_bar_on_stderr(monkeypatch):
    tty = _Tty()
    monkeypatch.setattr(_output.sys, "stderr", tty)
    with progress() as report:
        report("replaying", 150, 300)
        report("replaying", 300, 300)
    out = tty.getvalue()
    assert "replaying" in out and "300/300" in out
