"""`push_runs` copies a run between two SQLite stores whole, and a second push changes nothing."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from offline_helpers import assert_model_loads, assert_whole_copy, copies_of, log_full_run

from agentnn.errors import NotFoundError
from agentnn.mlflow_integration import ExperimentTracker
from agentnn.sdk.nn_models import ModelManager


def test_push_copies_every_point_param_tag_file_model_and_registration(
    store_uri: str, second_store: str, workdir: Path
):
    tracker = ExperimentTracker("routing", tracking_uri=store_uri)
    run_id, module = log_full_run(tracker, workdir, steps=1200, register_as="router")

    results = ModelManager(store_uri).push_runs([run_id], to=second_store)

    source, target = mlflow.MlflowClient(store_uri), mlflow.MlflowClient(second_store)
    copy = assert_whole_copy(source, target, run_id)
    assert results[0].target_run_id == copy.info.run_id
    assert results[0].metrics == 2 * 1200 + 1  # over log_batch's limit of 1,000: chunked
    assert results[0].registered == ["router/1"]
    assert target.get_experiment(copy.info.experiment_id).name == "routing"
    assert_model_loads(second_store, copy, module)
    version = ModelManager(second_store).list_versions("router")[0]
    assert version.run_id == copy.info.run_id
    tags = source.get_run(run_id).data.tags
    assert tags["agentnn.push"] == "done"
    assert tags["agentnn.pushed_to"] == f"{second_store} {copy.info.run_id}"


def test_a_second_push_changes_nothing(store_uri: str, second_store: str, workdir: Path):
    tracker = ExperimentTracker("routing", tracking_uri=store_uri)
    run_id, _ = log_full_run(tracker, workdir, steps=50, register_as="router")
    manager = ModelManager(store_uri)
    first = manager.push_runs([run_id], to=second_store)[0]

    again = manager.push_runs([run_id], to=second_store)[0]

    assert first.changed and not again.changed
    assert again.target_run_id == first.target_run_id
    target = mlflow.MlflowClient(second_store)
    assert len(copies_of(target, run_id)) == 1
    assert len(target.get_metric_history(first.target_run_id, "acc")) == 50
    assert len(ModelManager(second_store).list_versions("router")) == 1


def test_pushing_an_unknown_run_names_it(store_uri: str, second_store: str, workdir: Path):
    ExperimentTracker("routing", tracking_uri=store_uri)
    with pytest.raises(NotFoundError, match="0123456789abcdef"):
        ModelManager(store_uri).push_runs(["0123456789abcdef"], to=second_store)


def test_nested_runs_are_pushed_with_their_parent(store_uri: str, second_store: str,
                                                  workdir: Path):
    tracker = ExperimentTracker("search", tracking_uri=store_uri)
    with tracker.start_run(run_name="study") as parent:
        for trial in range(2):
            with tracker.start_run(run_name=f"trial-{trial}", nested=True) as child:
                child.log_metric("val_loss", 1.0 / (trial + 1))

    result = ModelManager(store_uri).push_runs([parent.run_id], to=second_store)[0]

    target = mlflow.MlflowClient(second_store)
    assert result.children == 2
    children = target.search_runs(
        [target.get_experiment_by_name("search").experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{result.target_run_id}'",
    )
    assert sorted(run.info.run_name for run in children) == ["trial-0", "trial-1"]
    assert ModelManager(store_uri).push_runs([parent.run_id], to=second_store)[0].changed is False
