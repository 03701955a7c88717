"""What the writer tests share: waiting for the writer without timing it."""

from __future__ import annotations

import time
from collections.abc import Callable

GUARD = 300  # seconds; guards against a hang, times nothing


def wait_until(condition: Callable[[], object], guard: float = GUARD) -> bool:
    """Poll ``condition`` until it holds; False after ``guard`` seconds (a hang, not a timing)."""
    deadline = time.monotonic() + guard
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
