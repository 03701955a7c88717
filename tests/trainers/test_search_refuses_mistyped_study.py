"""The search refuses a mistyped --storage or an empty --study before it creates anything."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from agentnn.cli.main import app
from agentnn.errors import InvalidArgumentError


def _train_architecture(*args: str):
    return CliRunner().invoke(app, ["train", "architecture", "--dataset", "synthetic", *args])


def _created(workdir) -> list[str]:
    return sorted(path.name for path in workdir.iterdir() if path.name != "store.db")


def test_a_storage_in_a_folder_that_does_not_exist_is_refused_in_one_line(
    workdir, store_uri, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)

    result = _train_architecture("--storage", "sqlite:///nonexistent/dir/x.db")

    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and str(workdir / "nonexistent" / "dir") in line
    assert _created(workdir) == []  # no folder, no study file, no run


def test_an_empty_study_name_is_refused_in_one_line(workdir, store_uri, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)

    result = _train_architecture("--study", " ")

    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "study name is empty" in line
    assert _created(workdir) == []


def test_the_python_search_refuses_the_same_before_any_run(workdir, store_uri):
    from agentnn.data import build_interaction_dataset, synthesize_interactions
    from agentnn.mlflow_integration import ExperimentTracker
    from agentnn.nn_models import dynamic_architecture as da

    tracker = ExperimentTracker(da.EXPERIMENT, tracking_uri=store_uri)
    data = build_interaction_dataset(synthesize_interactions(100, n_agents=2, seed=0), seed=0)
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        da.train({"n_trials": 1, "epochs": 1}, data, tracker=tracker,
                 storage=f"sqlite:///{workdir / 'missing' / 'x.db'}")
    with pytest.raises(InvalidArgumentError, match="study name is empty"):
        da.train({"n_trials": 1, "epochs": 1}, data, tracker=tracker, study="")
    assert tracker.client.search_runs([tracker.experiment_id]) == []
    assert not (workdir / "missing").exists()
