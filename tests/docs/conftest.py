"""The documentation's code blocks: the closing line says how many ran."""

from __future__ import annotations

from typing import Any

import pytest
from doc_blocks import TALLY

TALLY_KEY = "docs_tally"


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under pytest-xdist the blocks run in a worker: hand its tally to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[TALLY_KEY] = {"run": TALLY.run, "skipped": TALLY.skipped,
                                   "shown": TALLY.shown, "pages": sorted(TALLY.pages)}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """The controller adds up what each worker ran (xdist's documented ``workeroutput``)."""
    tally = getattr(node, "workeroutput", {}).get(TALLY_KEY)
    if tally:
        TALLY.run += tally["run"]
        TALLY.skipped += tally["skipped"]
        TALLY.shown += tally["shown"]
        TALLY.pages.update(tally["pages"])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY.run or TALLY.skipped:
        terminalreporter.write_line(
            f"docs: {TALLY.run} code blocks run from {len(TALLY.pages)} pages; "
            f"{TALLY.skipped} skipped with a reason, {TALLY.shown} shown output not run"
        )
