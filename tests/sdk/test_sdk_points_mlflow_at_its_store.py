"""The SDK and the command set MLflow's own tracking URI, so plain mlflow.* calls in the same
process see agentnn's store (./mlruns/mlflow.db), not MLflow 3's default ./mlflow.db."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def folder_with_a_run(tmp_path: Path) -> Path:
    """A folder whose embedded store (./mlruns/mlflow.db) holds one run of experiment 'mine'."""
    import mlflow

    (tmp_path / "mlruns").mkdir()
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    run = client.create_run(client.create_experiment("mine"))
    client.set_terminated(run.info.run_id)
    return tmp_path


def run_python(folder: Path, script: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AGENTNN_"))}
    env["AGENTNN_JOURNAL_DIR"] = str(folder / "journal")
    done = subprocess.run([sys.executable, "-c", script], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_plain_mlflow_imported_after_the_sdk_sees_the_same_store(folder_with_a_run):
    out = run_python(folder_with_a_run, (
        "import sys\n"
        "from agentnn.sdk.nn_models import ModelManager\n"
        "runs = ModelManager().list_runs()\n"
        "print('mlflow' in sys.modules)\n"  # the reads still need no MLflow
        "import mlflow\n"
        "print(mlflow.get_tracking_uri())\n"
        "print(mlflow.get_experiment_by_name('mine') is not None, len(runs))\n"
    ))
    assert out == ["False", f"sqlite:///{folder_with_a_run / 'mlruns' / 'mlflow.db'}", "True",
                   "1"]
    assert not (folder_with_a_run / "mlflow.db").exists()  # MLflow's own default, untouched


def test_plain_mlflow_imported_before_the_sdk_sees_the_same_store(folder_with_a_run):
    out = run_python(folder_with_a_run, (
        "import mlflow\n"
        "from agentnn.sdk.nn_models import ModelManager\n"
        "ModelManager()\n"
        "print(len(mlflow.search_runs(experiment_names=['mine'])))\n"
    ))
    assert out == ["1"]


def test_after_an_agentnn_command_plain_mlflow_sees_the_same_store(folder_with_a_run):
    out = run_python(folder_with_a_run, (
        "from agentnn.cli.main import app\n"
        "try:\n"
        "    app(['model', 'runs', 'mine', '--output', 'json'], standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "import mlflow\n"
        "print('RESULT', len(mlflow.search_runs(experiment_names=['mine'])))\n"
    ))
    assert out[-2:] == ["RESULT", "1"]
