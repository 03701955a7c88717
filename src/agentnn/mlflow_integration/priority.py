"""The training process's background threads (journal appends, the writer) at the lowest CPU
priority.

Why: when PyTorch's threads hold every core, each millisecond a background thread takes from a
core delays a whole parallel step (a step waits for its slowest thread). At the lowest priority
the scheduler gives the background threads the gaps training leaves and the cores it does not
use, as it always did for the writer process (``nice 19``); measured in
``bench/tracking_overhead.py`` this took 0-2% off the loop. Linux only: there a thread has a
nice value of its own, while elsewhere ``setpriority`` on a thread id would renice a process.
"""

from __future__ import annotations

import os
import sys
import threading

LOWEST = 19  # the nice value of the writer process and of the training process's background threads


def lower(thread: threading.Thread) -> None:
    """Give a started thread the lowest CPU priority (Linux; a no-op elsewhere).

    Called by the thread's owner right after ``start()`` (which returns once the thread has its
    native id), so the thread never runs a step at the training's priority.
    """
    if not sys.platform.startswith("linux") or thread.native_id is None:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, thread.native_id, LOWEST)
    except OSError:  # refused (a restricted sandbox): the thread keeps the process's priority
        pass
