"""Who writes a run's journal, and how its end wakes the writer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from writer_helpers import GUARD, wait_until

from agentnn.mlflow_integration import ExperimentTracker
from agentnn.mlflow_integration.writer import thread as writer_thread
from agentnn.mlflow_integration.writer.loop import lock_holder
from agentnn.mlflow_integration.writer.owner import WriterProcess


def test_a_thread_of_the_training_process_writes_its_runs(tracker, client):
    with tracker.start_run() as run:
        run.log_metrics({"loss": 0.5}, step=1)
        owner = WriterProcess.for_folder(tracker.journal_dir)
        assert owner.process is None  # no writer process: MLflow is imported here already
        assert lock_holder(tracker.journal_dir) == os.getpid()
        assert owner.wake()

    assert [m.value for m in client.get_metric_history(run.run_id, "loss")] == [0.5]
    assert client.get_run(run.run_id).info.status == "FINISHED"


def test_a_woken_writer_process_lives_on_and_sends_the_next_run(store_uri, workdir, client):
    journal_dir = workdir / "process-journal"
    owner = WriterProcess.for_folder(journal_dir)
    assert owner.ensure_running()  # a writer process holds the folder before any run
    process = owner.process
    try:
        assert wait_until(lambda: lock_holder(journal_dir) == process.pid)
        for _ in range(20):  # far more wake-ups than any run sends
            assert owner.wake()
        tracker = ExperimentTracker("tests", tracking_uri=store_uri, journal_dir=journal_dir)
        with tracker.start_run() as run:  # the folder is served: no writer thread
            run.log_metrics({"loss": 0.25}, step=1)

        assert process.poll() is None  # the signal is blocked and awaited, never fatal
        assert [m.value for m in client.get_metric_history(run.run_id, "loss")] == [0.25]
        assert client.get_run(run.run_id).info.status == "FINISHED"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(GUARD)


def test_a_writer_it_did_not_start_is_never_signalled(tmp_path):
    stranger = WriterProcess.for_folder(tmp_path / "other-journal")
    assert stranger.process is None
    assert stranger.wake() is False


def test_the_writer_thread_announces_each_pass_so_a_drain_looks_at_once(tracker, client):
    with tracker.start_run() as run:
        owner = WriterProcess.for_folder(tracker.journal_dir)
        thread = owner._writer_thread
        thread.pass_event.clear()
        run.log_metrics({"loss": 0.5}, step=1)
        owner.wake()
        assert thread.pass_event.wait(GUARD)  # the pass after the wake-up says it is done

    assert [m.value for m in client.get_metric_history(run.run_id, "loss")] == [0.5]



def test_the_points_of_a_live_run_reach_the_store_before_it_ends(tracker, client):
    with tracker.start_run() as run:
        run.log_metrics({"loss": 0.5}, step=1)
        assert wait_until(lambda: client.get_metric_history(run.run_id, "loss"), guard=60)
        run.log_metrics({"loss": 0.25}, step=2)
        assert wait_until(lambda: len(client.get_metric_history(run.run_id, "loss")) == 2,
                          guard=60)
        assert client.get_run(run.run_id).info.status == "RUNNING"


def test_a_run_of_another_process_in_the_folder_drains_without_waiting_for_a_send_interval(
    tracker, client, store_uri, monkeypatch
):
    # This process's thread serves the folder and, with only its own run live, would not scan
    # again for an hour; the other process's run cannot wake it, and must not wait for it.
    monkeypatch.setattr(writer_thread, "LIVE_SEND_INTERVAL", 3600.0)
    script = textwrap.dedent("""
        from agentnn.mlflow_integration import ExperimentTracker
        with ExperimentTracker("tests").start_run() as run:
            for step in range(50):
                run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        print(run.run_id, flush=True)
    """)
    env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri,
           "AGENTNN_JOURNAL_DIR": str(tracker.journal_dir), "AGENTNN_DRAIN_TIMEOUT": "30"}
    with tracker.start_run() as own:
        own.log_metrics({"loss": 0.5}, step=1)
        assert lock_holder(tracker.journal_dir) == os.getpid()
        other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               timeout=GUARD, env=env)
        assert other.returncode == 0, other.stderr
        assert "has not confirmed" not in other.stderr  # its drain did not time out
        run_id = other.stdout.strip()
        assert len(client.get_metric_history(run_id, "loss")) == 50
        assert client.get_run(run_id).info.status == "FINISHED"
