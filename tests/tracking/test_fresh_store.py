"""Eight training processes starting together on a folder with no store: all of them track."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import pytest

from agentnn.mlflow_integration.store.embedded import ensure_sqlite_store

GUARD = 600  # seconds; guards against a hang, times nothing
PROCESSES, STEPS = 8, 500


@pytest.mark.slow
def test_eight_trackers_starting_at_once_create_one_store_and_lose_nothing(workdir: Path):
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("MLFLOW_", "AGENTNN_"))}  # the embedded default, fresh
    script = workdir / "train.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        from agentnn.mlflow_integration import ExperimentTracker
        sys.stdin.readline()  # every process is up before any touches the store
        with ExperimentTracker("fresh").start_run() as run:
            for step in range({STEPS}):
                run.log_metrics({{"loss": 1.0 / (step + 1), "acc": step / {STEPS}}}, step=step)
        print(run.run_id, flush=True)
    """))
    assert not (workdir / "mlruns").exists()
    trainers = [
        subprocess.Popen([sys.executable, str(script)], cwd=workdir, env=env, text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(PROCESSES)
    ]
    try:
        for trainer in trainers:
            trainer.stdin.write("go\n")
            trainer.stdin.flush()
        outcomes = [trainer.communicate(timeout=GUARD) for trainer in trainers]
    finally:
        for trainer in trainers:
            if trainer.poll() is None:
                trainer.kill()
                trainer.wait()

    for trainer, (_, err) in zip(trainers, outcomes):
        assert trainer.returncode == 0, err
    run_ids = {out.strip() for out, _ in outcomes}
    assert len(run_ids) == PROCESSES
    client = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}")
    for run_id in run_ids:
        assert client.get_run(run_id).info.status == "FINISHED"
        for key in ("loss", "acc"):
            steps = sorted(p.step for p in client.get_metric_history(run_id, key))
            assert steps == list(range(STEPS))


def test_a_sqlite_store_is_created_once_under_its_lock(workdir: Path):
    uri = f"sqlite:///{workdir / 'made' / 'mlflow.db'}"
    ensure_sqlite_store(uri)
    ensure_sqlite_store(uri)  # once per process: the second call is free
    assert (workdir / "made" / "mlflow.db").is_file()
    assert (workdir / "made" / "mlflow.db.lock").exists()
    assert mlflow.MlflowClient(uri).search_experiments()[0].name == "Default"
