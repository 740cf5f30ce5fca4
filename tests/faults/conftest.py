"""The fault suite's figures: each test's scenario line is shown at the end of the run (in CI's
output, where ``-s`` is off) and kept in ``chaos-figures.txt`` under the session's temp dir.

The lines travel as the test report's ``user_properties``, which pytest-xdist carries from the
process that ran the test to the one that prints the summary (``pytest_terminal_summary`` in
tests/conftest.py: under xdist the printing process never loads this file)."""

from __future__ import annotations

import pytest

KEY = "chaos_figures"


@pytest.fixture
def chaos_report(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Call with a ``ScenarioResult``: its line goes to the summary and to the figures file."""
    path = tmp_path_factory.getbasetemp() / "chaos-figures.txt"

    def report(result) -> None:
        lines = [result.line()] + [f"  {p}" for p in result.problems[:20]]
        request.node.user_properties.append((KEY, "\n".join(lines)))
        with open(path, "a") as out:
            out.write("\n".join(lines + [f"    {t}" for t in result.timeline]) + "\n")

    return report
