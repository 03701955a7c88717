"""The one owner of the folder's writer, for a training process and for ``agentnn model sync``.

A training process asks its :class:`WriterProcess` (one per journal folder) to watch a journal.
Unless a writer already serves the folder, the owner becomes its writer: a thread of the
training process (:class:`~agentnn.mlflow_integration.writer.thread.WriterThread`) that forwards
the folder's journals with the MLflow the process has already imported. Why a thread and not a
process of its own: a writer process must import MLflow first, about 3 s of CPU, and while
PyTorch's threads hold every core that import slows each step by far more than its share (a step
waits for its slowest thread); the native path's work per point (microseconds) is small enough
to share the process. The thread keeps the process's CPU priority: at nice 19 a thread that
holds the interpreter lock when the scheduler sets it aside stalls the training thread; with two
other processes busy on both cores, a run's loop took 2.2x its untracked time and its end 17 s
(0.85x and 0.12 s at normal priority), while the gain without such load was within the noise.
The owner keeps a writer alive from a daemon thread while a watched journal is open or unsent,
starting a writer process when the thread cannot serve; waits (bounded) for a journal's drain
when the run ends; and at exit hands what is still unsent to a writer process, which outlives
the training process until the store has it (or until its retry limit). It never waits on the
store at exit.

``agentnn model sync`` calls :func:`sync_journals`, which runs the writer in the foreground (or,
when a background writer holds the folder, waits for it) and returns what happened as plain
data."""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agentnn.errors import JournalError
from agentnn.mlflow_integration.journal.format import (
    DAMAGED_SUFFIX,
    REJECTED_SUFFIX,
    HeaderIncomplete,
    complete_unsent_bytes,
    list_journals,
    only_bookkeeping_unsent,
    read_header,
    unsent_bytes,
)
from agentnn.mlflow_integration.writer.loop import (
    LOG_NAME,
    WAKE_SIGNAL,
    forward_all,
    lock_holder,
    writer_running,
)
from agentnn.mlflow_integration.writer.thread import WriterThread

KEEPALIVE_INTERVAL = 5.0  # seconds between checks that a writer serves the folder
WRITER_CHECK_INTERVAL = 2.0  # the same check while a run waits for its drain
DRAIN_POLL = 0.02  # seconds between looks at the cursor while a writer process drains
PASS_WAIT = 0.25  # at most this between looks while this process's writer thread drains: it
#                   says when a pass ends, and each look in between would take the interpreter
#                   lock from the send a run's end is waiting for
STOP_TIMEOUT = 5.0  # seconds stop() waits for the keep-alive thread
SYNC_WAIT_POLL = 0.2  # seconds between looks while a background writer does the sending
THREAD_START_TIMEOUT = 5.0  # seconds to learn whether the writer thread got the folder's lock
HAND_OVER_WAIT = 1.0  # seconds exit waits for the writer thread to stop between sends; after
#                       that the process ends anyway (a send cut short is rolled back and kept)

class WriterProcess:
    """Starts, keeps alive and waits for the writer of one journal folder.

    Use :meth:`for_folder`: every tracker of a process shares the folder's owner.
    """

    _owners: dict[Path, WriterProcess] = {}
    _owners_lock = threading.Lock()

    def __init__(self, journal_dir: Path) -> None:
        self.journal_dir = journal_dir
        self.process: subprocess.Popen[bytes] | None = None
        """The writer this owner started last (None when another process's writer serves)."""
        self._open: set[Path] = set()  # journals of runs in progress
        self._draining: set[Path] = set()  # journals of ended runs the store does not have yet
        self._lock = threading.Lock()
        self._process_lock = threading.Lock()  # the keep-alive thread and the run both start it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._writer_thread: WriterThread | None = None

    @classmethod
    def for_folder(cls, journal_dir: Path) -> WriterProcess:
        key = journal_dir.resolve()
        with cls._owners_lock:
            if key not in cls._owners:
                cls._owners[key] = cls(journal_dir)
            return cls._owners[key]

    # --- the process -----------------------------------------------------------------------

    def serve_in_process(self) -> bool:
        """Be the folder's writer as a thread of this process unless a writer serves it; True
        when this process's thread serves the folder."""
        with self._process_lock:
            if self._writer_thread is not None and self._writer_thread.is_alive():
                return self._writer_thread.locked
            self.journal_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            if writer_running(self.journal_dir):
                return False
            thread = WriterThread(self.journal_dir)
            thread.start()
            thread.ready.wait(THREAD_START_TIMEOUT)
            if not thread.locked:
                return False
            if self._writer_thread is None:
                atexit.register(self.hand_over)
            self._writer_thread = thread
            return True

    def _ensure_writer(self) -> bool:
        """A writer serves the folder: this process's thread, else a writer process; True for
        the thread."""
        if self.serve_in_process():
            return True
        self.ensure_running()
        return False

    def hand_over(self) -> None:
        """At exit: stop the writer thread and leave what is unsent (or not pushed yet) to a
        writer process.

        The process waits for the thread's lock (``--wait-for-lock``), so it takes over even
        when the thread is still in the middle of a send as this process ends.
        """
        thread = self._writer_thread
        if thread is None:
            return
        self._finish_bookkeeping(thread)
        stopped = thread.stop(HAND_OVER_WAIT)
        work = self.pending_work()
        if work:
            self._spawn(wait_for_lock=not stopped)
            self._say_who_goes_on(work)

    def _finish_bookkeeping(self, thread: WriterThread) -> None:
        """Let the thread read the end records appended after the last drain (a pass that
        touches no store: the status is set already), so the folder is left tidy; at most
        :data:`HAND_OVER_WAIT` seconds."""
        deadline = time.monotonic() + HAND_OVER_WAIT
        while (thread.is_alive() and thread.locked and time.monotonic() < deadline
               and any(only_bookkeeping_unsent(journal)
                       for journal in list_journals(self.journal_dir))):
            thread.pass_event.clear()
            thread.wake_event.set()
            thread.pass_event.wait(max(0.0, deadline - time.monotonic()))

    def has_work(self) -> bool:
        """Whether the folder holds work a writer must finish (see :meth:`pending_work`)."""
        return bool(self.pending_work())

    def pending_work(self) -> list[str]:
        """The work a writer must still finish in the folder, one phrase each: journals with
        unsent records (beyond an end record already applied), and runs kept here during an
        outage whose push is pending (also long after the run ended)."""
        if not self.journal_dir.is_dir():
            return []
        from agentnn.config import mask_uri
        from agentnn.mlflow_integration.offline.push import PendingPush

        unsent = [journal for journal in list_journals(self.journal_dir)
                  if unsent_bytes(journal) and not only_bookkeeping_unsent(journal)]
        work = [f"{len(unsent)} journal(s) to send to their store"] if unsent else []
        work += [f"run {pending.run_id} to push to {mask_uri(pending.intended_uri)}"
                 for pending in PendingPush.all(self.journal_dir)]
        return work

    def _say_who_goes_on(self, work: list[str]) -> None:
        """The last word of a process that leaves work behind: who does it, and how to stop it."""
        import warnings

        from agentnn import config
        from agentnn.errors import ConfigError, TrackingWarning

        process = self.process
        if process is None:
            return
        try:
            give_up = float(config.resolve().writer_give_up.value)
        except ConfigError:
            give_up = config.DEFAULT_WRITER_GIVE_UP
        warnings.warn(
            f"a writer process (pid {process.pid}) goes on after this one: {'; '.join(work)}. "
            f"It stops when done, or after {give_up:.0f} s without an answer "
            f"({config.AGENTNN_WRITER_GIVE_UP}); `kill {process.pid}` stops it at once, and "
            "`agentnn model sync` / `agentnn model push --pending` finish the work later",
            TrackingWarning, stacklevel=2)

    def ensure_running(self) -> bool:
        """Start a detached writer unless one holds the folder; True when one was started."""
        with self._process_lock:
            if self.process is not None and self.process.poll() is not None:
                self.process = None  # reaped: it finished or was killed
            self.journal_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            if writer_running(self.journal_dir):
                return False
            if self.process is not None:  # started, not holding the lock yet
                return False
            self._spawn()
            return True

    def _spawn(self, *, wait_for_lock: bool = False) -> None:
        """Start a detached writer process (it outlives this one until its work is done)."""
        command = [sys.executable, "-m", "agentnn.mlflow_integration.writer",
                   str(self.journal_dir), "--parent", str(os.getpid())]
        if wait_for_lock:
            command.append("--wait-for-lock")
        with open(self.journal_dir / LOG_NAME, "ab") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,
            )

    def wake(self) -> bool:
        """Wake the writer this owner started from its idle wait; True when it was woken.

        The writer thread by its event. A writer process only when it is our own child and the
        folder's lock names it: it blocked the signal before taking the lock, so the signal can
        never end it. Another process's writer is left to notice on its next scan.
        """
        thread = self._writer_thread
        if thread is not None and thread.is_alive() and thread.locked:
            thread.wake_event.set()
            return True
        with self._process_lock:
            process = self.process
            if process is None or process.poll() is not None:
                return False
            if lock_holder(self.journal_dir) != process.pid:
                return False
            process.send_signal(WAKE_SIGNAL)
            return True

    # --- journals --------------------------------------------------------------------------

    def watch(self, journal: Path) -> bool:
        """A run started writing ``journal``: make sure a writer serves it until it is sent;
        True when this process's writer thread does (it can take the journal's chunks from
        :data:`journal.HANDOFF`)."""
        with self._lock:
            self._open.add(journal)
        in_process = self._ensure_writer()
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._keep_alive, name="agentnn-writer-keepalive", daemon=True
            )
            self._thread.start()
        return in_process

    def wait_drained(
        self,
        journal: Path,
        timeout: float,
        on_progress: Callable[[float], None] | None = None,
    ) -> bool:
        """Wait until the store has every record of ``journal``; False after ``timeout`` s.

        ``on_progress`` gets the fraction sent after every pass of the writer (at least every
        :data:`PASS_WAIT` s). Ctrl-C stops the wait (False).
        Either way the journal stays watched until it is sent.
        """
        started = last_check = time.monotonic()
        total = max(unsent_bytes(journal), 1)
        with self._lock:
            self._open.discard(journal)
            self._draining.add(journal)
        self.wake()
        try:
            while (left := unsent_bytes(journal)) > 0:
                now = time.monotonic()
                if now - started > timeout:
                    return False
                if now - last_check > WRITER_CHECK_INTERVAL:
                    last_check = now
                    self._ensure_writer()
                if on_progress is not None:
                    on_progress(1 - left / total)
                self._wait_for_a_pass()
        except KeyboardInterrupt:
            return False
        return True

    def _wait_for_a_pass(self) -> None:
        """Sleep until this process's writer thread ends a pass (at most :data:`PASS_WAIT` s);
        a writer process is polled every :data:`DRAIN_POLL` s: its passes are not seen here."""
        thread = self._writer_thread
        if thread is not None and thread.is_alive():
            thread.pass_event.wait(PASS_WAIT)
            thread.pass_event.clear()  # the caller looks again before it waits again
        else:
            time.sleep(DRAIN_POLL)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop keeping the writer alive (bounded join); reap the writer if it has exited.

        The writer itself is not stopped: it exits once its parent is gone and every journal
        is sent, so stopping here never loses a record.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.process is not None and self.process.poll() is not None:
            self.process = None

    def sync(self, timeout: float) -> SyncReport:
        """Send what the journals still hold; retry the store up to ``timeout`` s.

        Runs the writer in this process; when a background writer holds the folder, waits (up
        to ``timeout``) for it instead. Damaged journals never stop the others, and nothing here
        spins: a journal still being written is left for later.
        """
        report = SyncReport(self.journal_dir)
        exists = self.journal_dir.is_dir()
        journals = list_journals(self.journal_dir) if exists else []
        report.journals = len(journals)
        if journals:
            result = forward_all(self.journal_dir, once=True, retry_limit=timeout)
            if result is None:  # a background writer holds the folder: wait for it instead
                report.sent = None
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline and not all(map(_settled, journals)):
                    time.sleep(SYNC_WAIT_POLL)
            else:
                report.sent = result.sent
                report.events = result.events
                report.waiting = result.waiting
                report.store_error = result.store_error
            report.unsent = [j for j in journals if complete_unsent_bytes(j)]
        if exists:
            report.damaged = sorted(self.journal_dir.glob(f"*{DAMAGED_SUFFIX}"))
            report.rejected = sorted(self.journal_dir.glob(f"*{REJECTED_SUFFIX}"))
        return report

    def _keep_alive(self) -> None:
        while not self._stop.wait(KEEPALIVE_INTERVAL):
            with self._lock:
                self._draining = {j for j in self._draining if unsent_bytes(j)}
                busy = bool(self._open or self._draining)
            if not busy:
                return
            self._ensure_writer()


# --- agentnn model sync --------------------------------------------------------------------


@dataclass
class SyncReport:
    """What ``agentnn model sync`` did, as plain data for the command (or a script) to show."""

    journal_dir: Path
    journals: int = 0
    """Journals found."""
    sent: int | None = 0
    """Records sent; None when a background writer did the sending."""
    events: list[str] = field(default_factory=list)
    """One line each: a journal or chunk set aside, a run found killed."""
    waiting: list[str] = field(default_factory=list)
    """One line each: a journal left for later because its training process still writes it."""
    unsent: list[Path] = field(default_factory=list)
    """Journals with records the store did not take (it did not answer)."""
    store_error: str | None = None
    damaged: list[Path] = field(default_factory=list)
    """Files of damaged records kept beside the journals."""
    rejected: list[Path] = field(default_factory=list)
    """Files of records the store refused."""


def sync_journals(journal_dir: Path, timeout: float) -> SyncReport:
    """What ``agentnn model sync`` calls: the folder's :meth:`WriterProcess.sync`."""
    return WriterProcess.for_folder(journal_dir).sync(timeout)


def _settled(journal: Path) -> bool:
    """Nothing a writer can do about ``journal`` now: it is gone, or sent up to a line its
    live training process is still writing."""
    try:
        if complete_unsent_bytes(journal):
            return False
        header, _ = read_header(journal)
    except FileNotFoundError:
        return True
    except HeaderIncomplete:
        return True  # being created; left for later
    except JournalError:
        return False  # damaged: the writer sets it aside
    return not header.process_gone()
