"""What the writer sends respects MLflow's log_batch limits, and concurrent runs all arrive."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow


def test_more_params_tags_and_metrics_than_one_batch_holds_all_arrive(tracker, client):
    params = {f"p{i:03d}": i for i in range(250)}  # MLflow takes at most 100 params a call
    tags = {f"t{i:03d}": str(i) for i in range(150)}  # and 100 tags
    with tracker.start_run(params=params) as run:
        run.set_tags(tags)
        run.log_metrics({f"m{i:04d}": float(i) for i in range(1500)}, step=0)  # 1000 metrics
    data = client.get_run(run.run_id).data
    assert data.params == {key: str(value) for key, value in params.items()}
    assert {key: data.tags[key] for key in tags} == tags
    assert len(data.metrics) == 1500 and data.metrics["m1499"] == 1499.0


def test_two_processes_logging_to_one_store_at_once_lose_nothing(store_uri, workdir: Path):
    script = workdir / "train.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        from agentnn.mlflow_integration import ExperimentTracker
        tracker = ExperimentTracker("concurrent", tracking_uri={store_uri!r})
        with tracker.start_run(run_name=sys.argv[1]) as run:
            for step in range(2000):
                run.log_metrics({{"loss": step / 2000, "acc": 1 - step / 2000}}, step=step)
        print(run.run_id)
    """))
    processes = [
        subprocess.Popen([sys.executable, str(script), name], stdout=subprocess.PIPE, text=True,
                         env=os.environ.copy())
        for name in ("first", "second")
    ]
    run_ids = []
    for process in processes:
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0
        run_ids.append(output.strip())
    client = mlflow.MlflowClient(store_uri)
    for run_id in run_ids:
        assert client.get_run(run_id).info.status == "FINISHED"
        for key in ("loss", "acc"):
            steps = sorted(p.step for p in client.get_metric_history(run_id, key))
            assert steps == list(range(2000))
