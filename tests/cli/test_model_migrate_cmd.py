"""`agentnn model migrate`: a file store made by MLflow moves into ./mlruns/mlflow.db."""

from __future__ import annotations

import json
import os
import subprocess
import sys

MAKE_FILE_STORE = r'''
import sys
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("old-project")
for index in range(2):
    with mlflow.start_run(run_name=f"old-{index}"):
        mlflow.log_param("lr", str(index))
        for step in range(3):
            mlflow.log_metric("loss", 1.0 - step / 10, step=step)
        mlflow.log_text("hello", "notes.txt")
'''


def test_migrate_reports_what_it_moved_and_the_store_then_opens(cli, workdir):
    env = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"}
    made = subprocess.run([sys.executable, "-c", MAKE_FILE_STORE, (workdir / "mlruns").as_uri()],
                          env=env, capture_output=True, text=True, timeout=240)
    assert made.returncode == 0, made.stderr[-2000:]

    refused = cli("model", "runs")
    assert refused.exit_code == 1 and "legacy MLflow file store" in refused.stderr

    result = cli("model", "migrate", "--output", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["counts"]["runs"] == 2
    assert report["counts"]["params"] == 2
    assert report["counts"]["metric_points"] == 6
    assert report["artifact_files"] == 2
    assert report["target_uri"] == f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}"

    runs = cli("model", "runs", "old-project", "--output", "json")
    assert runs.exit_code == 0, runs.output
    assert sorted(run["run_name"] for run in json.loads(runs.stdout)) == ["old-0", "old-1"]


def test_migrating_a_folder_that_is_no_file_store_is_one_line_and_exit_1(cli, workdir):
    (workdir / "empty").mkdir()
    result = cli("model", "migrate", str(workdir / "empty"))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot migrate") and "not an MLflow file store" in \
        result.stderr
