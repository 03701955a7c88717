"""ModelManager.migrate: a legacy file store made by MLflow itself moves into SQLite intact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentnn.errors import LegacyFileStoreError, MigrationError
from agentnn.sdk.nn_models import ModelManager

# Written by MLflow's own (retired) file store, in a subprocess, as an old project would have.
MAKE_FILE_STORE = r'''
import json, sys
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("legacy")
made = {"runs": [], "points": 0, "params": 0, "artifacts": 0}
for index in range(3):
    with mlflow.start_run(run_name=f"old-{index}") as run:
        mlflow.log_params({"lr": str(10 ** -index), "layers": "2"})
        for step in range(4):
            mlflow.log_metric("loss", 1.0 / (step + 1 + index), step=step)
        mlflow.log_text(f"report {index}", "reports/report.txt")
        made["runs"].append(run.info.run_id)
        made["points"] += 4
        made["params"] += 2
        made["artifacts"] += 1
with mlflow.start_run(run_name="parent") as parent:
    with mlflow.start_run(run_name="child", nested=True) as child:
        mlflow.log_metric("loss", float("nan"))
        made["points"] += 1
    made["runs"] += [parent.info.run_id, child.info.run_id]
print(json.dumps(made))
'''


def make_file_store(folder: Path) -> dict:
    env = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"}
    result = subprocess.run(
        [sys.executable, "-c", MAKE_FILE_STORE, folder.as_uri()],
        capture_output=True, text=True, env=env, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def legacy_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One file store made by MLflow, copied by each test that migrates it."""
    folder = tmp_path_factory.mktemp("legacy") / "mlruns"
    return folder, make_file_store(folder)


def copy_store(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


def test_migrating_the_embedded_folder_keeps_every_run_param_point_and_artifact(
        legacy_store, workdir):
    source, made = legacy_store
    mlruns = copy_store(source, workdir / "mlruns")
    with pytest.raises(LegacyFileStoreError, match="migrate"):
        ModelManager().list_experiments()

    report = ModelManager().migrate()

    assert report.counts["runs"] == len(made["runs"])
    assert report.counts["params"] == made["params"]
    assert report.counts["metric_points"] == made["points"]
    assert report.artifact_files == made["artifacts"]
    assert report.target_uri == f"sqlite:///{mlruns / 'mlflow.db'}"
    assert report.renamed_metadata and all(p.endswith("meta.yaml.migrated")
                                           for p in report.renamed_metadata)
    manager = ModelManager()  # the embedded store now opens without complaint
    runs = manager.list_runs("legacy", limit=None)
    assert {run.run_id for run in runs} == set(made["runs"])
    first = next(run for run in runs if run.run_name == "old-0")
    assert [p.step for p in manager.metric_history(first.run_id, "loss")] == [0, 1, 2, 3]
    assert manager.get_run(first.run_id).artifacts == ["reports/report.txt"]


def test_migrating_into_a_store_that_has_runs_is_refused_and_changes_nothing(
        legacy_store, populated_copy, workdir):
    source, _ = legacy_store
    before = Path(populated_copy["db"]).read_bytes()
    with pytest.raises(MigrationError, match="already holds experiments or runs"):
        ModelManager(populated_copy["uri"]).migrate(source)
    assert Path(populated_copy["db"]).read_bytes() == before


def test_a_folder_that_is_not_a_file_store_is_refused(workdir):
    (workdir / "not-a-store").mkdir()
    with pytest.raises(MigrationError, match="not an MLflow file store"):
        ModelManager(f"sqlite:///{workdir / 'new.db'}").migrate(workdir / "not-a-store")
    assert not (workdir / "new.db").exists()
