"""Which training process writes a journal, and whether it still lives.

A pid alone is not enough: the system reuses pids, so a journal records its process's start
time too, and a writer tells a live training process from a stranger with the same pid by it.
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from agentnn.mlflow_integration.journal.records import as_integer, as_text

# --- the training process ------------------------------------------------------------------


def process_start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (Linux ``/proc``); None when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rfind(b")") + 2:].split()
    try:
        return int(fields[19])  # field 22, starttime
    except (IndexError, ValueError):
        return None


def pid_alive(pid: object) -> bool:
    """True while a process with this pid exists on this machine (ours or another user's)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class TrainingProcess:
    """The process that writes a journal: host, pid and start time (so a reused pid is told)."""

    host: str
    pid: int
    start: int | None

    @classmethod
    def current(cls) -> TrainingProcess:
        return _this_process(os.getpid())

    @classmethod
    def from_json(cls, data: object) -> TrainingProcess:
        if not isinstance(data, dict):
            raise ValueError("'process' is not an object")
        start = data.get("start")
        return cls(as_text(data.get("host")), as_integer(data.get("pid")),
                   None if start is None else as_integer(start))

    def to_json(self) -> dict[str, str | int | None]:
        return {"host": self.host, "pid": self.pid, "start": self.start}

    def is_gone(self) -> bool:
        """True when the process has exited (or its pid now belongs to another process).

        A process on another host cannot be checked and counts as alive: its journal is left
        alone rather than its run declared killed.
        """
        if self == _this_process(os.getpid()):  # a writer thread asking about its own process
            return False
        if self.host != socket.gethostname():
            return False
        if not pid_alive(self.pid):
            return True
        if self.start is None:
            return False
        started = process_start_time(self.pid)
        return started is not None and started != self.start

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


@functools.lru_cache(maxsize=1)
def _this_process(pid: int) -> TrainingProcess:
    """This process, asked once per pid (a forked child has its own): the writer thread asks
    on every pass whether its own process is gone."""
    return TrainingProcess(socket.gethostname(), pid, process_start_time(pid))
