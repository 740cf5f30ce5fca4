"""Printing for commands: tables and progress on rich, one JSON document with ``--json``.

Commands print their tables, progress and ``--json`` documents through these helpers:

- ``table(columns, rows)``: rows under a header. Each cell goes through ``printable()`` (so no
  stored string reaches a terminal unescaped) and ``None`` shows as ``-``. On a terminal it is
  a rich table (bold header, a rule under it, long cells folded to the terminal's width);
  otherwise plain text for grep and scripts: the same columns two spaces apart, no colour, no
  box drawing, no wrapping, no trailing spaces (laid out as rich lays out ``box=None``, which
  a test checks, but without its per-cell rendering: a 10,000-row listing takes a fraction of a
  second, not rich's 5-15).
- ``progress()``: one progress display on stderr for long operations, a rich progress bar per
  step on a terminal; elsewhere one line per finished step.
- ``emit_json(value)``: the one JSON document ``--json`` promises on stdout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal, TextIO

import typer

JsonOption = typer.Option(False, "--json", help="Print one JSON document (for scripts).")

# C0 controls, DEL and C1 controls: a terminal acts on them (ESC starts CSI/OSC sequences that
# recolour, retitle or plant hyperlinks; 0x9b and 0x9d are one-byte CSI and OSC), so a stored
# string a tenant or an endpoint wrote is shown with them escaped. JSON output needs none of
# this: json.dumps (ensure_ascii) writes every control and every non-ASCII character as \uNNNN.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# Above this many rows a terminal gets the plain layout too: rich renders ~1,000 rows a second.
RICH_MAX_ROWS = 1000


def printable(value: Any) -> str:
    """``value`` as text safe for a terminal: every C0/C1 control and DEL as ``\\xNN``."""
    text = value if isinstance(value, str) else str(value)
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def emit_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


@dataclasses.dataclass(frozen=True)
class Column:
    """A table column: its header, and ``justify="right"`` for figures."""

    header: str
    justify: Literal["left", "right"] = "left"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream: not a terminal
        return False


def _console(stream: TextIO, terminal: bool, **kw: Any):
    from rich.console import Console

    # markup, emoji and highlighting off: a cell saying "[bold]" or ":smile:" is shown as it is.
    # Whether it is a terminal is decided here, not by FORCE_COLOR & co: a pipe gets plain text.
    return Console(file=stream, force_terminal=terminal, color_system="auto" if terminal else None,
                   markup=False, emoji=False, highlight=False, **kw)


def table(columns: Sequence[str | Column], rows: Iterable[Sequence[Any]], *, err: bool = False) -> None:
    """Print ``rows`` under ``columns``' headers (on stderr with ``err``); cells through ``printable()``."""
    cols = [c if isinstance(c, Column) else Column(c) for c in columns]
    cells = [[printable(v) if v is not None else "-" for v in row] for row in rows]
    stream = sys.stderr if err else sys.stdout
    if _is_terminal(stream) and len(cells) <= RICH_MAX_ROWS:
        _rich_table(stream, cols, cells)
    else:
        stream.write("".join(line + "\n" for line in plain_table(cols, cells)))
        stream.flush()


def plain_table(columns: Sequence[Column], cells: Sequence[Sequence[str]]) -> list[str]:
    """The lines of a table as rich lays out ``box=None``: columns two spaces apart, by display width."""
    from rich.cells import cell_len

    lines = [[c.header for c in columns], *cells]
    widths = [max(cell_len(line[i]) for line in lines) for i in range(len(columns))]

    def pad(text: str, width: int, justify: str) -> str:
        gap = " " * (width - cell_len(text))
        return gap + text if justify == "right" else text + gap

    return ["  ".join(pad(t, w, c.justify) for t, w, c in zip(line, widths, columns)).rstrip() for line in lines]


def _rich_table(stream: TextIO, columns: Sequence[Column], cells: Sequence[Sequence[str]]) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, header_style="bold")
    for c in columns:
        t.add_column(c.header, justify=c.justify, overflow="fold")  # fold: a long id wraps, never loses characters
    for row in cells:
        t.add_row(*(Text(v) for v in row))
    _console(stream, True).print(t)


Progress = Callable[[str, int, int], None]


@contextlib.contextmanager
def progress() -> Iterator[Progress]:
    """``report(label, done, total)`` for a long operation; a new label is a new step.

    On a terminal each step is a rich progress bar on stderr; elsewhere (a log file) one line
    per step once it ends, ``label done/total``, so logs get no carriage returns."""
    if _is_terminal(sys.stderr):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

        bars = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=_console(sys.stderr, True))
        tasks: dict[str, Any] = {}

        def report(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bars.add_task(printable(label), total=total)
            bars.update(tasks[label], completed=done, total=total)

        with bars:
            yield report
        return

    last: list[tuple[str, int, int]] = []

    def line(label: str, done: int, total: int) -> None:
        sys.stderr.write(f"{printable(label)} {done:,}/{total:,}\n")
        sys.stderr.flush()

    def report(label: str, done: int, total: int) -> None:
        if last and last[0][0] != label:
            line(*last.pop())
        last[:] = [(label, done, total)]

    try:
        yield report
    finally:
        if last:
            line(*last[0])
