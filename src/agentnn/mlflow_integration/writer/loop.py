"""The folder's writer loop: scan the journals, send what is new, back off, sleep until woken.

One writer serves a folder: :func:`folder_lock` makes it the only one, whether it runs as a
thread of the training process or as a writer process. A pass that sends nothing is idle, so
the loop never spins; a writer process exits once its parent is gone and every journal is sent.

The writer's lines (what it set aside, which store path it took, a store that does not answer)
are logged at INFO under ``agentnn.mlflow_integration.writer``, a logger that keeps them out of
the application's logging (see the package). :func:`log_to_file` writes them to ``writer.log``
beside the journals, one timestamped line each, for as long as a writer runs.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agentnn import heap
from agentnn.config import DEFAULT_WRITER_GIVE_UP
from agentnn.errors import DamagedJournalError
from agentnn.mlflow_integration.journal.buffered import Handoff
from agentnn.mlflow_integration.journal.format import (
    HEADER_GRACE,
    HeaderIncomplete,
    list_journals,
    set_aside_journal,
)
from agentnn.mlflow_integration.journal.process import TrainingProcess, pid_alive
from agentnn.mlflow_integration.store.classify import NEEDS_A_PERSON, classify
from agentnn.mlflow_integration.writer.forwarder import JournalForwarder, is_retryable

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from agentnn.mlflow_integration.writer.pushing import PushThread


LOCK_NAME = "writer.lock"
LOG_NAME = "writer.log"
LOG_FORMAT = "%(asctime)s [%(process)d] %(message)s"  # the pid: a thread's or a process's line
WRITER_NICENESS = 19  # the lowest priority: training always comes first
POLL_INTERVAL = 0.2  # seconds between scans when there is nothing to send
# Seconds between looks at the folder for another process's new journal, while a writer thread
# that scans rarely waits: each look wakes a thread of the training process (about 0.2-0.4 ms
# of CPU here, with PyTorch keeping the caches), and another process's run needs only its
# first look; from then on its journal is scanned every POLL_INTERVAL.
FOLDER_WATCH_INTERVAL = 1.0
# Sent by the training process that started the writer when a run ends, so the last chunk is
# sent at once rather than after the rest of an idle sleep (the drain a user waits for). The
# writer blocks it before it takes the folder's lock and waits for it with sigtimedwait.
WAKE_SIGNAL = signal.SIGUSR1
IDLE_EXIT = 600.0  # seconds without work after which a writer whose parent lives exits anyway
BACKOFF_START, BACKOFF_MAX = 0.5, 30.0

WRITER_LOGGER = "agentnn.mlflow_integration.writer"  # the logger of every writer line
logger = logging.getLogger(__name__)

# --- the lock that makes one writer per journal folder -------------------------------------


def writer_running(journal_dir: Path) -> bool:
    """True when a writer holds the folder's lock."""
    lock = journal_dir / LOCK_NAME
    if not lock.exists():
        return False
    with open(lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.EACCES):
                return True
            raise
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


# --- the process ---------------------------------------------------------------------------


@dataclass
class WriterResult:
    """What a writer did, for ``agentnn model sync`` to say."""

    sent: int = 0
    """Records the store confirmed."""
    events: list[str] = field(default_factory=list)
    """One line per journal set aside, chunk set aside or run found killed."""
    waiting: list[str] = field(default_factory=list)
    """One line per journal left for later (its training process still writes it)."""
    store_error: str | None = None
    """The last error of a store that did not answer, when the writer gave up retrying."""


class Writer:
    """Scans a journal folder and forwards every journal that has unsent records."""

    def __init__(
        self,
        journal_dir: Path,
        retry_limit: float = DEFAULT_WRITER_GIVE_UP,
        *,
        stop: threading.Event | None = None,
        wake: threading.Event | None = None,
        passed: threading.Event | None = None,
        freeze_gc: bool = True,
        poll_interval: float = POLL_INTERVAL,
        handoff: Handoff | None = None,
    ) -> None:
        """``stop`` ends :meth:`run` between passes and ``wake`` cuts an idle wait short;
        ``passed`` is set after every pass (a run waiting for its drain looks at once);
        ``freeze_gc`` only where the process is the writer's own (not in a training process:
        its objects would be frozen for good; there :mod:`agentnn.heap` freezes them while a
        run is open); ``poll_interval`` is the idle wait between scans (a writer thread, woken by
        its own runs' ends, scans less often: see :meth:`_wait_for_work`); ``handoff`` holds
        the chunks its own process's runs wrote (a writer thread's), taken instead of read."""
        self.journal_dir = journal_dir
        self.handoff = handoff
        self.poll_interval = poll_interval
        self.retry_limit = retry_limit
        self.stop = stop
        self.wake = wake
        self.passed = passed
        self.result = WriterResult()
        self._forwarders: dict[Path, JournalForwarder] = {}
        self._clients: dict[str, MlflowClient] = {}
        self._broken: set[Path] = set()
        self._freeze_gc = freeze_gc
        self._frozen = False

    def report(self, line: str) -> None:
        """Say it in the writer's log and keep it for ``sync``."""
        logger.info(line)
        self.result.events.append(line)

    def client_for(self, tracking_uri: str) -> MlflowClient:
        if tracking_uri not in self._clients:
            from mlflow import MlflowClient

            from agentnn import config
            from agentnn.mlflow_integration.store.client import Store

            # credentials from .env reach MLflow through the store layer, as in the trainer
            Store.from_settings(config.resolve(tracking_uri)).configure_mlflow()
            self._clients[tracking_uri] = MlflowClient(tracking_uri=tracking_uri)
        return self._clients[tracking_uri]

    def journals(self) -> tuple[list[JournalForwarder], list[str]]:
        """A forwarder per readable journal, and a line per journal whose header is not written
        yet; broken headers are set aside on the way."""
        forwarders = []
        waiting = []
        for journal in list_journals(self.journal_dir):
            if journal in self._broken:
                continue
            forwarder = self._forwarders.get(journal)
            if forwarder is None:
                try:
                    forwarder = JournalForwarder(journal, self.client_for, self.report,
                                                 logger.info, self.handoff)
                except FileNotFoundError:
                    continue
                except HeaderIncomplete:
                    if not self._header_given_up(journal):
                        waiting.append(f"journal {journal}: its header is still being written; "
                                       "left for later")
                    continue
                except DamagedJournalError as error:
                    self._set_aside_journal(journal, error.reason)
                    continue
                self._forwarders[journal] = forwarder
                self._prepare_store(forwarder.tracking_uri)
            forwarders.append(forwarder)
        return forwarders, waiting

    def _prepare_store(self, tracking_uri: str) -> None:
        """Get a store ready when a journal for it appears rather than at its first send (its
        client, its path, compiled statements): a run shorter than a send interval would wait
        for that at its end. A store that fails here fails again, and is reported, at the send."""
        if tracking_uri in self._clients:
            return
        from agentnn.mlflow_integration.writer import sql_bulk

        try:
            self.client_for(tracking_uri)
            sql_bulk.prepare(tracking_uri, report=logger.info)
        except Exception:  # said by the send that meets it
            return

    def _header_given_up(self, journal: Path) -> bool:
        """A header without its newline for longer than a write takes was cut by a crash."""
        try:
            age = time.time() - journal.stat().st_mtime
        except FileNotFoundError:
            return True
        if age < HEADER_GRACE:
            return False
        self._set_aside_journal(journal, "broken header: cut off before its newline")
        return True

    def _set_aside_journal(self, journal: Path, reason: str) -> None:
        try:
            damaged = set_aside_journal(journal)
        except FileNotFoundError:
            return
        self.report(f"journal {journal}: {reason}; the whole journal is set aside as {damaged}")

    def forward_pass(self) -> tuple[int, Exception | None]:
        """Forward every journal once: (how much happened, the last store error or None)."""
        done, failure = 0, None
        forwarders, waiting = self.journals()
        for forwarder in forwarders:
            sent_before = forwarder.sent
            try:
                done += forwarder.forward()
            except FileNotFoundError:  # its run confirmed the drain and removed the journal
                self._forwarders.pop(forwarder.journal, None)
            except Exception as error:
                if is_retryable(error):
                    failure = error  # the other journals still get their turn
                    continue
                logger.info("giving up on %s: %s", forwarder.journal.name, error)
                self._broken.add(forwarder.journal)
            finally:
                self.result.sent += forwarder.sent - sent_before
        for journal in [j for j in self._forwarders if not j.exists()]:
            del self._forwarders[journal]
        if done and not self._frozen:
            # MLflow, SQLAlchemy and the store's engine are loaded now: their millions of
            # objects live as long as the writer, and the garbage collector's full passes over
            # them (set off by the rows a send allocates) cost about a fifth of a send's CPU.
            # A writer thread freezes them only while a run holds the heap (agentnn.heap).
            if self._freeze_gc:
                gc.freeze()
            else:
                heap.refreeze()
            self._frozen = True
        self.result.waiting = waiting + [
            f"journal {f.journal}: its last line is still being written by its training process "
            f"({f.header.describe_process()}); left for later"
            for f in self._forwarders.values() if f.waiting_on_tail
        ]
        return done, failure

    def run(self, parent_pid: int | None, once: bool = False) -> WriterResult:
        """Forward until done (``once``: until a pass finds nothing to do)."""
        backoff, idle_since, failing_since = BACKOFF_START, time.monotonic(), None
        from agentnn.mlflow_integration.writer.pushing import PushThread

        # Runs kept locally in an outage are pushed on a thread of their own: their stores
        # never hold up this folder's own journals.
        pusher = None if once else PushThread(self.journal_dir, self.stop)
        try:
            return self._run(parent_pid, once, pusher, backoff, idle_since, failing_since)
        finally:
            if pusher is not None:
                # Not joined: a push waits on its own store (a silent server holds it for
                # ANSWER_TIMEOUT), and the exit of the training process must not wait with it.
                # The push is resumable, and its run's lock goes with this process.
                pusher.stop(timeout=0.0)

    def _run(self, parent_pid: int | None, once: bool, pusher: PushThread | None,
             backoff: float, idle_since: float, failing_since: float | None) -> WriterResult:
        while self.stop is None or not self.stop.is_set():
            done, failure = self.forward_pass()
            if self.passed is not None:
                self.passed.set()
            if failure is not None:
                failing_since = failing_since or time.monotonic()
                if not once and classify(failure) in NEEDS_A_PERSON:
                    # Only a person fixes credentials or permissions: no tight loop, and the
                    # records stay in the journal (`agentnn model sync` sends them at once).
                    backoff = BACKOFF_MAX
                    logger.info("store refused the credentials (%s); the records stay in the "
                                "journal; retrying in %.1fs", failure, backoff)
                else:
                    logger.info("store did not answer (%s); retrying in %.1fs", failure, backoff)
                orphan = parent_pid is not None and not pid_alive(parent_pid)
                if (once or orphan) and time.monotonic() - failing_since > self.retry_limit:
                    self.result.store_error = str(failure).splitlines()[0] if str(failure) else (
                        type(failure).__name__)
                    return self.result
                _idle(backoff, self.stop)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff, failing_since = BACKOFF_START, None
            if done:
                idle_since = time.monotonic()
                continue
            # An idle pass: nothing complete to send, nothing to set aside; never spin.
            pushing = pusher is not None and pusher.poke()  # True while a push waits
            if once or (parent_pid is not None and not pid_alive(parent_pid)):
                if not pushing:
                    return self.result
                if time.monotonic() - idle_since > self.retry_limit:
                    if pusher is not None:
                        pusher.give_up(self.retry_limit)
                    return self.result
            elif time.monotonic() - idle_since > IDLE_EXIT and not pushing:
                return self.result
            self._wait_for_work()
        return self.result

    def _wait_for_work(self) -> None:
        """Idle until the next scan: ``poll_interval``, cut short by a wake-up.

        A writer that scans rarely (a writer thread, woken by its own runs' ends) looks every
        :data:`POLL_INTERVAL` while another process's journal is in the folder, and otherwise
        stops waiting when the folder changes (looked at every :data:`FOLDER_WATCH_INTERVAL`):
        a run of another process cannot wake it, and would wait for its scan.
        """
        if self.poll_interval <= POLL_INTERVAL or self.wake is None:
            _idle(self.poll_interval, self.wake)
            return
        this_process = TrainingProcess.current()
        if any(f.header.process != this_process for f in self._forwarders.values()):
            _idle(POLL_INTERVAL, self.wake)
            return
        listing = _modified(self.journal_dir)
        deadline = time.monotonic() + self.poll_interval
        while (left := deadline - time.monotonic()) > 0:
            if self.wake.wait(min(FOLDER_WATCH_INTERVAL, left)):
                self.wake.clear()
                return
            if _modified(self.journal_dir) != listing:  # a journal appeared (or went)
                return


def _modified(folder: Path) -> int:
    """The folder's modification time: it changes when a file is created, renamed or removed in
    it, not when one is appended to."""
    try:
        return folder.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def _idle(seconds: float, wake: threading.Event | None = None) -> None:
    """Wait ``seconds``, or less when woken: by ``wake`` (a writer thread), by
    :data:`WAKE_SIGNAL` (the writer process), or not at all (inside `agentnn model sync`)."""
    if wake is not None:
        if wake.wait(seconds):
            wake.clear()
    elif WAKE_SIGNAL in signal.pthread_sigmask(signal.SIG_BLOCK, []):
        signal.sigtimedwait([WAKE_SIGNAL], seconds)
    else:
        time.sleep(seconds)


@contextlib.contextmanager
def log_to_file(journal_dir: Path, *, this_thread_only: bool = False) -> Iterator[None]:
    """Write the writer's lines to the folder's ``writer.log`` while the block runs.

    ``this_thread_only``: only the lines of the thread that entered the block (a writer thread:
    its training process may run other writers, e.g. ``agentnn model sync``, or serve other
    folders). The file is opened at the first line, in append mode: the writer thread and a
    writer process of the same folder add whole lines to it.
    """
    handler = logging.FileHandler(journal_dir / LOG_NAME, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    if this_thread_only:
        thread = threading.get_ident()
        helper = pusher_thread_name(thread)  # the pushes this writer's loop started
        handler.addFilter(lambda record: record.thread == thread or record.threadName == helper)
    writer_log = logging.getLogger(WRITER_LOGGER)
    writer_log.addHandler(handler)
    try:
        yield
    finally:
        writer_log.removeHandler(handler)
        handler.close()


def pusher_thread_name(writer_thread: int) -> str:
    """The name of the thread a writer (by thread ident) pushes pending runs on."""
    return f"agentnn-pusher-{writer_thread}"


def lock_holder(journal_dir: Path) -> int | None:
    """The pid written in the folder's lock by the writer that holds it (None if unreadable).

    Only meaningful while the lock is held; the file keeps the last holder's pid after it.
    """
    try:
        return int((journal_dir / LOCK_NAME).read_text().strip())
    except (OSError, ValueError):
        return None


def forward_all(
    journal_dir: Path,
    *,
    parent_pid: int | None = None,
    once: bool = False,
    retry_limit: float = DEFAULT_WRITER_GIVE_UP,
    wait_for_lock: bool = False,
) -> WriterResult | None:
    """Be the folder's writer until done; None when another writer holds the folder.

    ``wait_for_lock``: wait for the holder to let go instead (a writer that takes over from
    the writer thread of a training process that is exiting).
    """
    journal_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    from agentnn.config import WRITER_HTTP_DEFAULTS

    for name, value in WRITER_HTTP_DEFAULTS.items():  # the writer has its own back-off
        os.environ.setdefault(name, value)
    with folder_lock(journal_dir, wait=wait_for_lock) as held:
        if not held:
            return None
        return Writer(journal_dir, retry_limit).run(parent_pid, once=once)


@contextlib.contextmanager
def folder_lock(journal_dir: Path, *, wait: bool = False) -> Iterator[bool]:
    """Hold the folder's writer lock, with this process's pid in it; yields False when another
    writer holds it (and ``wait`` is not set). Released when the block ends."""
    with open(journal_dir / LOCK_NAME, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        yield True


# Imported by MLflow's package on the way to what the writer uses, never used by the writer.
