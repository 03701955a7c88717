"""The documentation's code blocks: the closing line says how many ran."""

from __future__ import annotations

import pytest
from doc_blocks import TALLY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY.run or TALLY.skipped:
        terminalreporter.write_line(
            f"docs: {TALLY.run} code blocks run from {len(TALLY.pages)} pages; "
            f"{TALLY.skipped} skipped with a reason, {TALLY.shown} shown output not run"
        )
