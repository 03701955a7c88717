"""The documentation's code blocks: the tally a worker hands over (tests/conftest.py prints it)."""

from __future__ import annotations

import pytest
from doc_blocks import TALLY

TALLY_KEY = "docs_tally"  # read by tests/conftest.py's pytest_testnodedown


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under pytest-xdist the blocks run in a worker: hand its tally to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[TALLY_KEY] = {"run": TALLY.run, "skipped": TALLY.skipped,
                                   "shown": TALLY.shown, "pages": sorted(TALLY.pages)}
