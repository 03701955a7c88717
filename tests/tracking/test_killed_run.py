"""A training process killed outright: its run ends KILLED, at the time of its last record."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow

GUARD = 300  # seconds; subprocess timeouts guard against hangs, they time nothing


def test_a_sigkilled_trainer_is_set_killed_by_sync_with_every_point(
    store_uri: str, workdir: Path
):
    journal_dir = workdir / "journal"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri,
           "AGENTNN_JOURNAL_DIR": str(journal_dir), "AGENTNN_FLUSH_INTERVAL": "0.2"}
    script = workdir / "train.py"
    script.write_text(textwrap.dedent("""
        import os, signal, time
        from agentnn.mlflow_integration import ExperimentTracker
        run = ExperimentTracker("killed").start_run(params={"lr": 0.1})
        print(run.run_id, flush=True)
        for step in range(2000):
            run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 2000}, step=step)
        time.sleep(1.5)  # several flush intervals: every point is in the journal
        os.kill(os.getpid(), signal.SIGKILL)
    """))
    trainer = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             timeout=GUARD, env=env)
    assert trainer.returncode == -9, trainer.stderr
    run_id = trainer.stdout.strip()

    result = subprocess.run([sys.executable, "-m", "agentnn", "model", "sync", "--timeout", "60"],
                            capture_output=True, text=True, timeout=GUARD, env=env)

    assert result.returncode == 0, result.stderr
    client = mlflow.MlflowClient(store_uri)
    run = client.get_run(run_id)
    history = client.get_metric_history(run_id, "loss")
    assert sorted(point.step for point in history) == list(range(2000))
    assert len(client.get_metric_history(run_id, "acc")) == 2000
    assert run.data.params == {"lr": "0.1"}
    assert run.info.status == "KILLED"
    assert run.info.end_time == max(point.timestamp for point in history)
    # Said by whoever found it: this sync, or the orphaned writer in its log.
    log = (journal_dir / "writer.log").read_text() if (journal_dir / "writer.log").exists() else ""
    assert f"run {run_id}: its training process" in result.stderr + log
