"""The training process wakes its writer when a run ends; the wake-up never ends the writer."""

from __future__ import annotations

import signal

from writer_helpers import GUARD, wait_until

from agentnn.mlflow_integration import writer
from agentnn.mlflow_integration.writer_process import WriterProcess


def test_woken_writer_lives_on_and_sends_the_next_run(tracker, client):
    with tracker.start_run() as first:
        first.log_metrics({"loss": 0.5}, step=1)
        owner = WriterProcess.for_folder(tracker.journal_dir)
        process = owner.process
        assert process is not None
        assert wait_until(lambda: writer.lock_holder(tracker.journal_dir) == process.pid)

    try:
        for _ in range(20):  # far more wake-ups than any run sends
            assert owner.wake()
        with tracker.start_run() as second:
            second.log_metrics({"loss": 0.25}, step=1)

        assert process.poll() is None  # the signal is blocked and awaited, never fatal
        assert [m.value for m in client.get_metric_history(second.run_id, "loss")] == [0.25]
        assert client.get_run(second.run_id).info.status == "FINISHED"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(GUARD)


def test_a_writer_it_did_not_start_is_never_signalled(tracker, tmp_path):
    stranger = WriterProcess.for_folder(tmp_path / "other-journal")
    assert stranger.process is None
    assert stranger.wake() is False
