"""`agentnn train architecture` in real processes: two commands joining one study, a killed
study resumed. Both run on one SQLite Optuna storage and one SQLite tracking store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from agentnn.data import synthesize_interactions, write_interactions
from agentnn.nn_models.search import study as search_study

EXPERIMENT = "architecture_optimization"
COMMAND_TIMEOUT = 600  # seconds; each process imports torch and MLflow on a shared CPU


@pytest.fixture
def log_file(workdir: Path) -> Path:
    return write_interactions(synthesize_interactions(300, 4, seed=3), workdir / "logs.jsonl")


def _search(store_uri: str, log_file: Path, storage: str, trials: int, epochs: int,
            *extra: str) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "agentnn", "train", "architecture", "--data", str(log_file),
         "--trials", str(trials), "--epochs", str(epochs), "--study", "shared",
         "--storage", storage, "--seed", "5", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )


def _finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=COMMAND_TIMEOUT)
    assert process.returncode == 0, output.decode()
    return output.decode()


def _parent_and_children(client: mlflow.MlflowClient) -> tuple[object, list]:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id])
    parents = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    assert len(parents) == 1
    return parents[0], [run for run in runs if run is not parents[0]]


def test_two_commands_on_one_storage_share_one_study_and_one_parent_run(
    workdir: Path, store_uri: str, log_file: Path
):
    storage = f"sqlite:///{workdir / 'study.db'}"
    first = _search(store_uri, log_file, storage, 2, 2)
    second = _search(store_uri, log_file, storage, 2, 2)
    outputs = [_finish(first), _finish(second)]

    study = optuna.load_study(study_name="shared", storage=storage)
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]  # no trial twice
    assert {t.state for t in study.trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    client = mlflow.MlflowClient(store_uri)
    parent, children = _parent_and_children(client)
    assert parent.data.tags[search_study.STUDY_TAG] == "shared"
    assert study.user_attrs[search_study.PARENT_RUN_ATTR] == parent.info.run_id
    assert sorted(int(c.data.tags[search_study.TRIAL_TAG]) for c in children) == [0, 1, 2, 3]
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    assert all(f"run id:      {parent.info.run_id}" in output for output in outputs)


def test_a_killed_study_resumes_in_the_same_parent_run(
    workdir: Path, store_uri: str, log_file: Path
):
    storage = f"sqlite:///{workdir / 'study.db'}"
    (workdir / "noprune.yaml").write_text("pruner: none\n")
    # Long enough that trial 1 is still training when the test sees it start (without a pruner
    # an epoch writes nothing to the study, so epochs are quick).
    slow = _search(store_uri, log_file, storage, 3, 400, "--config", "noprune.yaml")
    _wait_until_trial_one_trains(slow, storage)
    os.killpg(slow.pid, signal.SIGKILL)
    slow.wait()

    _finish(_search(store_uri, log_file, storage, 2, 2, "--config", "noprune.yaml"))

    study = optuna.load_study(study_name="shared", storage=storage)
    states = {t.number: t.state for t in study.trials}
    assert states[0] == TrialState.COMPLETE and states[1] == TrialState.FAIL
    retried = [t for t in study.trials if t.user_attrs.get(search_study.RETRY_OF_ATTR) == 1]
    assert len(retried) == 1 and retried[0].params == study.trials[1].params
    assert len(study.trials) == 4  # 0 done, 1 killed, then the resumed command's two
    client = mlflow.MlflowClient(store_uri)
    parent, _ = _parent_and_children(client)
    assert study.user_attrs[search_study.PARENT_RUN_ATTR] == parent.info.run_id
    interrupted = client.get_run(study.trials[1].user_attrs[search_study.RUN_ID_ATTR])
    assert interrupted.data.tags[search_study.TRIAL_STATE_TAG] == "failed"
    assert interrupted.info.status == "KILLED"
    board_path = client.download_artifacts(parent.info.run_id, "leaderboard.json", str(workdir))
    board = {row["trial"]: row["state"] for row in json.loads(Path(board_path).read_text())}
    assert board == {0: "complete", 1: "failed", 2: "complete", 3: "complete"}


def _wait_until_trial_one_trains(process: subprocess.Popen, storage: str) -> None:
    """Polls the study (not the clock): trial 0 finished and trial 1 has its child run."""
    database = Path(storage.removeprefix("sqlite:///"))
    while True:
        assert process.poll() is None, process.communicate()[0].decode()
        if database.exists():
            opened = search_study.open_storage(storage)  # under the lock the commands take
            study = (optuna.load_study(study_name="shared", storage=opened)
                     if "shared" in optuna.get_all_study_names(opened) else None)
            trials = {t.number: t for t in study.trials} if study else {}
            if (0 in trials and trials[0].state == TrialState.COMPLETE and 1 in trials
                    and search_study.RUN_ID_ATTR in trials[1].user_attrs):
                return
        try:
            process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
