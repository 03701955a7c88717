"""log_metric / log_metrics: every point arrives, in order, with its step; bad input fails here."""

from __future__ import annotations

import math
import sys

import mlflow
import numpy as np
import pytest
import torch

from agentnn.errors import InvalidKeyError, InvalidMetricError


def test_twenty_thousand_points_all_arrive_in_order(tracker, client):
    with tracker.start_run() as run:
        for step in range(20_000):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
    history = client.get_metric_history(run.run_id, "loss")
    assert len(history) == 20_000
    ordered = sorted(history, key=lambda point: (point.step, point.timestamp))
    assert [point.step for point in ordered] == list(range(20_000))
    assert [point.value for point in ordered] == [1.0 / (step + 1) for step in range(20_000)]


def test_several_metrics_per_step_land_with_that_step(tracker, client):
    with tracker.start_run() as run:
        for step in range(50):
            run.log_metrics({"loss": step * 0.5, "acc": step / 50}, step=step)
    for key, expected in (("loss", lambda s: s * 0.5), ("acc", lambda s: s / 50)):
        history = client.get_metric_history(run.run_id, key)
        assert sorted((p.step, p.value) for p in history) == [(s, expected(s)) for s in range(50)]


def test_numpy_torch_and_bool_values_become_floats(tracker, client):
    with tracker.start_run() as run:
        run.log_metrics({"np": np.float32(0.25), "torch": torch.tensor(1.5), "flag": True,
                         "off": False, "int": 3}, step=0)
    metrics = client.get_run(run.run_id).data.metrics
    assert metrics == {"np": 0.25, "torch": 1.5, "flag": 1.0, "off": 0.0, "int": 3.0}


def test_nan_and_inf_are_stored_and_counted(tracker, client):
    with tracker.start_run() as run:
        run.log_metric("loss", float("nan"), step=0)
        run.log_metric("loss", float("inf"), step=1)
        run.log_metric("loss", 0.5, step=2)
    history = sorted(client.get_metric_history(run.run_id, "loss"), key=lambda p: p.step)
    assert math.isnan(history[0].value)
    assert history[1].value >= sys.float_info.max  # MLflow's SQL store keeps +inf as max float
    assert history[2].value == 0.5
    assert client.get_run(run.run_id).data.tags["agentnn.nonfinite_metric_points"] == "2"


@pytest.mark.parametrize("value", ["0.5", None, [1.0, 2.0], torch.ones(3), object()])
def test_non_numeric_value_raises_type_error_naming_the_key(tracker, value):
    with tracker.start_run() as run:
        with pytest.raises(TypeError, match="val_loss") as caught:
            run.log_metric("val_loss", value)
        assert isinstance(caught.value, InvalidMetricError)


@pytest.mark.parametrize("key", ["", "bad*key", "x" * 251, "/abs", "a/../b", 3])
def test_invalid_key_raises_value_error_naming_it(tracker, key):
    with tracker.start_run() as run:
        with pytest.raises(ValueError) as caught:
            run.log_metric(key, 1.0)
        assert isinstance(caught.value, InvalidKeyError)
        assert str(key)[:20] in str(caught.value)


def test_a_bad_value_does_not_lose_earlier_points(tracker, client):
    with tracker.start_run() as run:
        run.log_metric("loss", 1.0, step=0)
        with pytest.raises(TypeError):
            run.log_metrics({"loss": 2.0, "acc": "high"}, step=1)
        run.log_metric("loss", 3.0, step=2)
    steps = sorted((p.step, p.value) for p in client.get_metric_history(run.run_id, "loss"))
    assert steps == [(0, 1.0), (2, 3.0)]  # the refused call queued nothing; the rest arrived


def test_users_own_mlflow_calls_land_in_the_active_run(tracker, client):
    with tracker.start_run() as run:
        assert mlflow.active_run().info.run_id == run.run_id
        mlflow.log_metric("own_metric", 7.0)
        mlflow.set_tag("own_tag", "yes")
    assert mlflow.active_run() is None
    data = client.get_run(run.run_id).data
    assert data.metrics["own_metric"] == 7.0 and data.tags["own_tag"] == "yes"
