"""ModelManager.metric_history(max_points=…): fewer points, same shape, on every store.

Whatever the history, the answer holds at most ``max_points`` points, all of them logged ones,
in step order, and always the first, the last, the smallest and the largest; without
``max_points`` it is exactly MLflow's own ``get_metric_history``.
"""

from __future__ import annotations

import itertools
import math
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentnn.errors import InvalidArgumentError
from agentnn.sdk.nn_models import MetricPoint, ModelManager

BASE_TIME = 1_700_000_000_000
_keys = itertools.count()

values = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.just(float("nan")),
)
histories = st.lists(
    st.tuples(st.integers(min_value=0, max_value=5_000), values), min_size=1, max_size=300
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, template_store: Path) -> dict:
    """One SQLite store with one run; each example logs a metric of its own into it."""
    import mlflow

    path = tmp_path_factory.mktemp("downsampling") / "store.db"
    shutil.copyfile(template_store, path)
    uri = f"sqlite:///{path}"
    client = mlflow.MlflowClient(uri)
    run = client.create_run("0", run_name="long")
    return {"uri": uri, "client": client, "run_id": run.info.run_id,
            "direct": ModelManager(uri), "mlflow": ModelManager(uri, direct_reads=False)}


def log_history(store: dict, points: list[tuple[int, float]]) -> str:
    from mlflow.entities import Metric

    key = f"m{next(_keys)}"
    metrics = [Metric(key, value, BASE_TIME + index, step)
               for index, (step, value) in enumerate(points)]
    for start in range(0, len(metrics), 1000):
        store["client"].log_batch(store["run_id"], metrics=metrics[start:start + 1000])
    return key


def as_tuple(point: MetricPoint) -> tuple:
    return point.step, point.timestamp_ms, "nan" if math.isnan(point.value) else point.value


def check_shape(full: list[MetricPoint], reduced: list[MetricPoint], max_points: int) -> None:
    assert len(reduced) <= max_points
    assert set(map(as_tuple, reduced)) <= set(map(as_tuple, full))  # only logged points
    assert [as_tuple(p) for p in reduced] == sorted(map(as_tuple, reduced),
                                                    key=lambda t: (t[0], t[1]))
    assert as_tuple(reduced[0]) == as_tuple(full[0])
    assert as_tuple(reduced[-1]) == as_tuple(full[-1])
    numbers = [p.value for p in full if not math.isnan(p.value)]
    kept = [p.value for p in reduced if not math.isnan(p.value)]
    if numbers:
        assert min(kept) == min(numbers)
        assert max(kept) == max(numbers)
    if len(full) <= max_points:
        assert list(map(as_tuple, reduced)) == list(map(as_tuple, full))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(points=histories, max_points=st.integers(min_value=4, max_value=120))
def test_reduced_history_keeps_first_last_min_and_max(store, points, max_points):
    key = log_history(store, points)
    full = store["client"].get_metric_history(store["run_id"], key)
    full = sorted((MetricPoint(m.step, m.value, m.timestamp) for m in full),
                  key=lambda p: (p.step, p.timestamp_ms))
    for reader in ("direct", "mlflow"):
        everything = store[reader].metric_history(store["run_id"], key)
        assert list(map(as_tuple, everything)) == list(map(as_tuple, full)), reader
        reduced = store[reader].metric_history(store["run_id"], key, max_points=max_points)
        check_shape(full, reduced, max_points)


def test_a_long_history_shrinks_to_the_budget_on_both_readers(store):
    points = [(step, math.sin(step / 50) + (5.0 if step == 7_777 else 0.0))
              for step in range(0, 20_000)]
    points[12_345] = (12_345, -9.0)
    key = log_history(store, points)
    direct = store["direct"].metric_history(store["run_id"], key, max_points=400)
    through_mlflow = store["mlflow"].metric_history(store["run_id"], key, max_points=400)
    for reduced in (direct, through_mlflow):
        assert 300 <= len(reduced) <= 400
        assert (7_777, pytest.approx(math.sin(7_777 / 50) + 5.0)) in [
            (p.step, p.value) for p in reduced]
        assert min(p.value for p in reduced) == -9.0
        assert (reduced[0].step, reduced[-1].step) == (0, 19_999)


def test_a_budget_below_four_points_is_refused(store):
    with pytest.raises(InvalidArgumentError, match=r"max_points must be at least 4 .*got 3"):
        store["direct"].metric_history(store["run_id"], "m0", max_points=3)


@pytest.mark.server
def test_a_server_store_reduces_the_fetched_history(mlflow_server):
    import mlflow
    from mlflow.entities import Metric

    client = mlflow.MlflowClient(mlflow_server)
    experiment_id = client.create_experiment(f"downsampling-{next(_keys)}")
    run_id = client.create_run(experiment_id).info.run_id
    metrics = [Metric("loss", 1.0 / (step + 1), BASE_TIME + step, step) for step in range(3000)]
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start:start + 1000])
    manager = ModelManager(mlflow_server)
    full = manager.metric_history(run_id, "loss")
    assert len(full) == 3000
    check_shape(full, manager.metric_history(run_id, "loss", max_points=100), 100)


@settings(max_examples=300, deadline=None)
@given(points=histories, max_points=st.integers(min_value=4, max_value=120))
def test_the_reference_downsampler_keeps_the_shape(points, max_points):
    from agentnn.sdk._downsample import downsample

    full = sorted((MetricPoint(step, value, BASE_TIME + index)
                   for index, (step, value) in enumerate(points)),
                  key=lambda p: (p.step, p.timestamp_ms))
    check_shape(full, downsample(full, max_points), max_points)
