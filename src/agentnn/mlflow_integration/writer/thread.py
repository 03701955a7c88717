"""The writer as a daemon thread of the training process (the usual case).

Why a thread: a writer process must import MLflow first, about 3 s of CPU, which slows every
training step while it runs; the thread uses the MLflow the process has already imported, and
the native path's work per point is small enough to share the process.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from agentnn.mlflow_integration.journal.buffered import HANDOFF
from agentnn.mlflow_integration.writer.loop import Writer, folder_lock, log_to_file

LIVE_SEND_INTERVAL = 5.0  # seconds between the writer thread's scans while only this process's
#                           runs are live: each pass costs a transaction and a cursor update
#                           whatever it sends, so a point reaches the store within about this
#                           (plus the journal's flush interval) while the run is live, and at once
#                           when the run ends; other processes' journals are scanned for every
#                           POLL_INTERVAL, as their runs' ends cannot wake this thread

logger = logging.getLogger(__name__)


class WriterThread(threading.Thread):
    """The folder's writer as a daemon thread of the training process.

    It takes the folder's lock (so it is the only writer, as a writer process would be), runs
    :meth:`Writer.run` with its log lines appended to ``writer.log``, and lets go of the lock
    when it is stopped or has been idle for :data:`IDLE_EXIT`.
    """

    def __init__(self, journal_dir: Path) -> None:
        super().__init__(name="agentnn-writer", daemon=True)
        self.journal_dir = journal_dir
        self.stop_event = threading.Event()
        self.wake_event = threading.Event()
        self.pass_event = threading.Event()  # set after every pass: a drain looks at once
        self.ready = threading.Event()
        self.locked = False

    def run(self) -> None:
        with log_to_file(self.journal_dir, this_thread_only=True):
            self._serve()

    def _serve(self) -> None:
        try:
            with folder_lock(self.journal_dir) as held:
                if not held:  # another writer serves the folder
                    return
                self.locked = True
                self.ready.set()
                Writer(self.journal_dir, stop=self.stop_event,
                       wake=self.wake_event, passed=self.pass_event,
                       freeze_gc=False, poll_interval=LIVE_SEND_INTERVAL,
                       handoff=HANDOFF).run(parent_pid=None)
        except Exception as error:  # the keep-alive starts a writer process
            logger.error("writer thread stopped: %s: %s", type(error).__name__, error)
        finally:
            self.locked = False
            self.ready.set()

    def stop(self, timeout: float) -> bool:
        """Stop between passes; True when the thread (and its lock) is gone within ``timeout``."""
        self.stop_event.set()
        self.wake_event.set()
        self.join(timeout)
        return not self.is_alive()
