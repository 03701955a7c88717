"""Pending pushes on a thread of their own, beside the forwarding of local journals.

Why apart: a push talks to another store (the one a run was meant for), and that store may be
dead, silent or slow; while it is tried, the folder's local journals must still reach their own
store at once, so that no run's exit waits on someone else's store. The writer loop only starts
this thread when runs wait to be pushed and asks it whether they still do.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from agentnn.mlflow_integration.offline.push import AutoPusher, PendingPush
from agentnn.mlflow_integration.writer.loop import pusher_thread_name

logger = logging.getLogger(__name__)

PUSH_POLL = 1.0  # seconds between the pusher's looks while runs wait (each look is cheap)


class PushThread:
    """Runs :meth:`AutoPusher.step` on a daemon thread while pending pushes exist."""

    def __init__(self, journal_dir: Path, stop: threading.Event | None = None) -> None:
        self.journal_dir = journal_dir
        self.pusher = AutoPusher(journal_dir, log=logging.getLogger(
            "agentnn.mlflow_integration.writer").info)
        self._outer_stop = stop
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._waiting = False

    def poke(self) -> bool:
        """Start the thread when runs wait to be pushed; True while some run still waits."""
        if self._thread is not None and self._thread.is_alive():
            return self._waiting
        self._waiting = bool(PendingPush.all(self.journal_dir))
        if self._waiting and not self._stop.is_set():
            # Named after the writer's thread, whose log takes this thread's lines too.
            name = pusher_thread_name(threading.get_ident())
            self._thread = threading.Thread(target=self._run, name=name, daemon=True)
            self._thread.start()
        return self._waiting

    def _run(self) -> None:
        while not self._stopped():
            try:
                self._waiting = self.pusher.step()
            except Exception:  # a bug must not end the pushing for good: log it, try later
                logger.exception("pending pushes: unexpected error; trying again later")
                self._waiting = True
            if not self._waiting:
                return
            self._stop.wait(PUSH_POLL)

    def _stopped(self) -> bool:
        return self._stop.is_set() or (self._outer_stop is not None and self._outer_stop.is_set())

    def give_up(self, after: float) -> None:
        """Stop trying: each run still pending notes why (the thread is let go of first)."""
        self.stop()
        self.pusher.give_up(after)

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
