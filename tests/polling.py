"""Waiting in tests for something another process does: one poll loop for every folder."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], bool], timeout: float, what: str = "") -> None:
    """Poll ``condition`` every half second; fail naming ``what`` when it stays false."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")
