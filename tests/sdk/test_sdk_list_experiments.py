"""ModelManager.list_experiments on a store written by plain MLflow calls."""

from __future__ import annotations

import pytest

from agentnn.errors import StoreNotFoundError
from agentnn.sdk.nn_models import ModelManager


@pytest.mark.parametrize("direct_reads", [True, False], ids=["sqlite-direct", "mlflow-client"])
def test_experiments_list_names_ids_and_active_run_counts(populated, direct_reads):
    found = ModelManager(populated["uri"], direct_reads=direct_reads).list_experiments()
    by_name = {experiment.name: experiment for experiment in found}
    assert set(by_name) == {"Default", "routing", "Übung ✓ 路由"}
    routing = by_name["routing"]
    assert routing.experiment_id == populated["routing_experiment"]
    assert routing.run_count == 8  # 3 lr runs, nan, failed, parent, 2 children; not the deleted one
    assert by_name["Übung ✓ 路由"].run_count == 2
    assert by_name["Default"].run_count == 0 and by_name["Default"].last_run_ms is None
    assert routing.last_run_ms is not None
    assert routing.to_dict()["last_run"].endswith("+00:00")


def test_deleted_experiments_show_only_when_asked(populated_copy):
    from mlflow.tracking import MlflowClient

    MlflowClient(populated_copy["uri"]).delete_experiment(populated_copy["unicode_experiment"])
    manager = ModelManager(populated_copy["uri"])
    assert "Übung ✓ 路由" not in {e.name for e in manager.list_experiments()}
    deleted = {e.name: e for e in manager.list_experiments(include_deleted=True)}["Übung ✓ 路由"]
    assert deleted.lifecycle_stage == "deleted"


def test_a_store_that_does_not_exist_is_refused_and_not_created(workdir):
    manager = ModelManager(f"sqlite:///{workdir / 'absent.db'}")
    with pytest.raises(StoreNotFoundError, match="no MLflow store at"):
        manager.list_experiments()  # a read on a mistyped path must not show an empty store
    assert not (workdir / "absent.db").exists()
