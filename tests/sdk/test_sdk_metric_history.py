"""ModelManager.metric_history: every point of a metric, by step."""

from __future__ import annotations

import math

import pytest

from agentnn.errors import NotFoundError
from agentnn.sdk.nn_models import ModelManager

BOTH_READERS = pytest.mark.parametrize(
    "direct_reads", [True, False], ids=["sqlite-direct", "mlflow-client"]
)


@BOTH_READERS
def test_history_has_every_step_in_order(populated, direct_reads):
    points = ModelManager(populated["uri"], direct_reads=direct_reads).metric_history(
        populated["lr_0.001"], "val_loss")
    assert [(p.step, p.value) for p in points] == [(0, 0.9), (1, 0.5), (2, 0.3)]
    assert all(p.timestamp_ms > 0 for p in points)


@BOTH_READERS
def test_a_nan_point_comes_back_as_nan(populated, direct_reads):
    (point,) = ModelManager(populated["uri"], direct_reads=direct_reads).metric_history(
        populated["nan"], "val_loss")
    assert math.isnan(point.value)


@BOTH_READERS
def test_a_metric_the_run_never_logged_names_the_ones_it_did(populated, direct_reads):
    with pytest.raises(NotFoundError, match="metric 'loss' not found.*acc, val_loss"):
        ModelManager(populated["uri"], direct_reads=direct_reads).metric_history(
            populated["lr_0.1"], "loss")
