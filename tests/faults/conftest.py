"""The fault suite's figures: each test's scenario line is shown at the end of the run (in CI's
output, where ``-s`` is off) and kept in ``chaos-figures.txt`` under the session's temp dir."""

from __future__ import annotations

import pytest

_LINES: list[str] = []


@pytest.fixture
def chaos_report(tmp_path_factory: pytest.TempPathFactory):
    """Call with a ``ScenarioResult``: its line goes to the summary and to the figures file."""
    path = tmp_path_factory.getbasetemp() / "chaos-figures.txt"

    def report(result) -> None:
        lines = [result.line()] + [f"  {p}" for p in result.problems[:20]]
        _LINES.extend(lines)
        with open(path, "a") as out:
            out.write("\n".join(lines + [f"    {t}" for t in result.timeline]) + "\n")

    return report


def pytest_terminal_summary(terminalreporter) -> None:
    if _LINES:
        terminalreporter.section("fault suite figures (hookstream chaos --size short)")
        for line in _LINES:
            terminalreporter.write_line(line)
