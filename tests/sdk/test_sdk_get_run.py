"""ModelManager.get_run: everything about one run, whoever wrote it."""

from __future__ import annotations

import pytest

from agentnn.errors import NotFoundError
from agentnn.sdk.nn_models import ModelManager

BOTH_READERS = pytest.mark.parametrize(
    "direct_reads", [True, False], ids=["sqlite-direct", "mlflow-client"]
)


@BOTH_READERS
def test_a_parent_run_shows_params_artifacts_and_its_children(populated, direct_reads):
    detail = ModelManager(populated["uri"], direct_reads=direct_reads).get_run(populated["parent"])
    assert detail.run.run_name == "parent"
    assert detail.run.status == "FINISHED"
    assert detail.run.params == {"search": "grid"}
    assert detail.run.duration_s is not None and detail.run.duration_s >= 0
    assert detail.experiment_name == "routing"
    assert detail.artifacts == ["notes/readme.txt"]
    assert sorted(detail.child_run_ids) == sorted([populated["child_0"], populated["child_1"]])
    assert detail.run.parent_run_id is None


@BOTH_READERS
def test_a_child_run_names_its_parent_and_a_model_run_its_logged_model(populated, direct_reads):
    manager = ModelManager(populated["uri"], direct_reads=direct_reads)
    assert manager.get_run(populated["child_1"]).run.parent_run_id == populated["parent"]
    with_model = manager.get_run(populated["with_model"])
    assert len(with_model.logged_model_ids) == 1
    assert with_model.run.metrics == {"val_loss": 0.42}


@BOTH_READERS
def test_json_of_a_run_has_the_documented_fields(populated, direct_reads):
    data = ModelManager(populated["uri"], direct_reads=direct_reads).get_run(
        populated["no_metrics"]).to_dict()
    assert data["run_id"] == populated["no_metrics"]
    assert data["run_name"] == "no-metrics"
    assert data["metrics"] == {} and data["params"] == {}
    assert data["tags"]["note"] == "nothing logged"
    assert data["start_time"].endswith("+00:00")
    for key in ("end_time", "duration_s", "parent_run_id", "experiment_name", "artifact_uri",
                "artifacts", "child_run_ids", "logged_model_ids", "status", "lifecycle_stage"):
        assert key in data


@BOTH_READERS
def test_an_unknown_run_is_a_not_found_error(populated, direct_reads):
    with pytest.raises(NotFoundError, match="run '0123456789abcdef' not found"):
        ModelManager(populated["uri"], direct_reads=direct_reads).get_run("0123456789abcdef")
