"""Keep the process's long-lived objects out of the garbage collector's full passes while a run
is open.

Why: a training process with MLflow, SQLAlchemy and torch loaded holds several hundred thousand
objects that live as long as it does. A full (generation 2) collection walks every one of them,
and the loop's own garbage (and the writer thread's rows) sets one off every few seconds; on a
2-core machine one pass measured over a second, taken in the middle of an epoch with the GIL
held. ``gc.freeze()`` moves every object alive at that moment into a permanent generation the
collector skips; when the last open run ends, ``gc.unfreeze()`` hands them all back, so nothing
stays out of the collector's reach for longer than the runs that froze it.

A process that froze its heap itself (``gc.freeze()``) gets it unfrozen when its last run ends.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_open_runs = 0


def hold() -> None:
    """A run starts: freeze what is alive now (again for each run: its setup is long-lived too)."""
    global _open_runs
    with _lock:
        _open_runs += 1
        gc.freeze()


def refreeze() -> None:
    """Freeze what is alive now if a run holds the heap (the writer thread, once it has loaded
    the store's modules); nothing otherwise."""
    with _lock:
        if _open_runs:
            gc.freeze()


def release() -> None:
    """A run ended: when it was the last one open, the collector sees every object again."""
    global _open_runs
    with _lock:
        _open_runs = max(_open_runs - 1, 0)
        if not _open_runs:
            gc.unfreeze()
