"""ModelManager.best_run: the best finished run, skipping failed, deleted and NaN runs."""

from __future__ import annotations

import pytest

from agentnn.errors import InputError
from agentnn.sdk.nn_models import ModelManager


@pytest.mark.parametrize("direct_reads", [True, False], ids=["sqlite-direct", "mlflow-client"])
def test_best_run_is_the_lowest_finished_value_not_the_failed_or_deleted_one(populated,
                                                                           direct_reads):
    manager = ModelManager(populated["uri"], direct_reads=direct_reads)
    best = manager.best_run("routing", "val_loss", mode="min")
    assert best.run_id == populated["lr_0.01"]  # failed (0.01) and deleted (0.001) do not count
    assert best.metrics["val_loss"] == pytest.approx(0.2)


@pytest.mark.parametrize("direct_reads", [True, False], ids=["sqlite-direct", "mlflow-client"])
def test_max_mode_picks_the_highest_value(populated, direct_reads):
    manager = ModelManager(populated["uri"], direct_reads=direct_reads)
    assert manager.best_run("routing", "acc", mode="max").run_id == populated["lr_0.01"]
    assert manager.best_run("routing", "val_loss", mode="max").run_id == populated["lr_0.1"]


def test_best_run_is_none_when_no_finished_run_logged_the_metric(populated):
    assert ModelManager(populated["uri"]).best_run("routing", "never_logged") is None


def test_an_unknown_mode_is_refused(populated):
    with pytest.raises(InputError, match="mode must be 'min' or 'max'"):
        ModelManager(populated["uri"]).best_run("routing", "val_loss", mode="lowest")
