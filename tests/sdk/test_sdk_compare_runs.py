"""ModelManager.compare_runs: params and final metrics side by side, and what differs."""

from __future__ import annotations

import pytest

from agentnn.errors import InputError, NotFoundError
from agentnn.sdk.nn_models import ModelManager


def test_comparison_lines_values_up_and_names_the_differences(populated):
    ids = [populated["lr_0.001"], populated["lr_0.01"], populated["nan"]]
    comparison = ModelManager(populated["uri"]).compare_runs(ids)
    assert [run.run_id for run in comparison.runs] == ids
    assert comparison.params["lr"] == ["0.001", "0.01", "0.5"]
    assert comparison.params["optimizer"] == ["adamw", "adamw", None]
    assert comparison.metrics["acc"][2] is None
    assert "lr" in comparison.differing_params and "optimizer" in comparison.differing_params
    assert "val_loss" in comparison.differing_metrics


def test_identical_values_are_not_reported_as_differences(populated):
    ids = [populated["lr_0.001"], populated["lr_0.01"]]
    comparison = ModelManager(populated["uri"]).compare_runs(ids)
    assert "optimizer" not in comparison.differing_params
    data = comparison.to_dict()
    assert data["run_ids"] == ids
    assert data["params"]["optimizer"] == ["adamw", "adamw"]


def test_compare_needs_two_known_runs(populated):
    manager = ModelManager(populated["uri"])
    with pytest.raises(InputError, match="at least two"):
        manager.compare_runs([populated["lr_0.01"]])
    with pytest.raises(NotFoundError, match="run 'nope' not found"):
        manager.compare_runs([populated["lr_0.01"], "nope"])
