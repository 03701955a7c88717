"""Who writes a run's journal, and how its end wakes the writer."""

from __future__ import annotations

import os
import signal

from writer_helpers import GUARD, wait_until

from agentnn.mlflow_integration import ExperimentTracker, writer
from agentnn.mlflow_integration.writer_process import WriterProcess


def test_a_thread_of_the_training_process_writes_its_runs(tracker, client):
    with tracker.start_run() as run:
        run.log_metrics({"loss": 0.5}, step=1)
        owner = WriterProcess.for_folder(tracker.journal_dir)
        assert owner.process is None  # no writer process: MLflow is imported here already
        assert writer.lock_holder(tracker.journal_dir) == os.getpid()
        assert owner.wake()

    assert [m.value for m in client.get_metric_history(run.run_id, "loss")] == [0.5]
    assert client.get_run(run.run_id).info.status == "FINISHED"


def test_a_woken_writer_process_lives_on_and_sends_the_next_run(store_uri, workdir, client):
    journal_dir = workdir / "process-journal"
    owner = WriterProcess.for_folder(journal_dir)
    assert owner.ensure_running()  # a writer process holds the folder before any run
    process = owner.process
    try:
        assert wait_until(lambda: writer.lock_holder(journal_dir) == process.pid)
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
