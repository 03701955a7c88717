"""The training process's background threads (journal appends, the writer) run at the lowest CPU
priority, the training thread keeps its own, and what is logged still arrives."""

from __future__ import annotations

import os
import sys
import threading

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="threads have nice values of their own on Linux only")


def _nice_values() -> dict[str, int]:
    """Each live thread's nice value, by thread name, read from /proc."""
    values = {}
    for thread in threading.enumerate():
        try:
            with open(f"/proc/self/task/{thread.native_id}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        values[thread.name] = int(fields[16])  # field 19 of stat: nice
    return values


def test_journal_and_writer_threads_run_at_the_lowest_priority(tracker, client):
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    with tracker.start_run() as run:
        for step in range(20):
            run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        nice = _nice_values()
        assert nice["agentnn-journal"] == 19
        assert nice["agentnn-writer"] == 19
        assert nice[threading.current_thread().name] == own  # training keeps its priority
    assert len(client.get_metric_history(run.run_id, "loss")) == 20
