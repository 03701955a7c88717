"""Shared by the offline tests: a run with every kind of record, and what a store holds of it."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polling

REACH_TIMEOUT = 60.0  # seconds the issue allows from the server's return to the run's arrival
MLP_CONFIG = {"n_features": 4, "hidden": [8], "n_outputs": 3}
PUSH_STATE_TAGS = ("agentnn.push", "agentnn.pushed_to", "agentnn.source_run_id",
                   "agentnn.model_id", "agentnn.model_uri")


def log_full_run(tracker: Any, workdir: Path, *, steps: int = 1200, register_as: str | None = None,
                 ) -> tuple[str, Any]:
    """A finished run with params, tags, two metrics (a NaN among them), a file and a model.

    Returns the run id and the module whose weights the model holds.
    """
    import torch

    from agentnn.managers.builders import MLP_BUILDER, build_mlp
    from agentnn.mlflow_integration.models.format import log_torch_model

    torch.manual_seed(0)
    module = build_mlp(MLP_CONFIG)
    (workdir / "notes.txt").write_text("what the run learned")
    with tracker.start_run(params={"lr": 0.01, "layers": [8]}, tags={"team": "routing"}) as run:
        for step in range(steps):
            run.log_metrics({"loss": 1 / (step + 1), "acc": step / steps}, step=step)
        run.log_metric("loss", float("nan"), step=steps)
        run.log_artifact(workdir / "notes.txt", "reports")
        log_torch_model(module, builder=MLP_BUILDER, config=MLP_CONFIG, register_as=register_as)
    return run.run_id, module


def points(client: Any, run_id: str, key: str) -> list[tuple[int, int, str]]:
    """Every point of a metric as sortable (step, timestamp, value) triples; NaN as text."""
    return sorted(
        (p.step, p.timestamp, "nan" if math.isnan(p.value) else repr(p.value))
        for p in client.get_metric_history(run_id, key)
    )


def copies_of(client: Any, source_run_id: str) -> list[Any]:
    """Runs of any experiment of the store copied from ``source_run_id``."""
    from mlflow.entities import ViewType

    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return list(client.search_runs(
        experiments, filter_string=f"tags.`agentnn.source_run_id` = '{source_run_id}'",
        run_view_type=ViewType.ALL,
    ))


def artifact_files(client: Any, run_id: str, path: str | None = None) -> list[str]:
    files = []
    for info in client.list_artifacts(run_id, path):
        files += artifact_files(client, run_id, info.path) if info.is_dir else [info.path]
    return sorted(files)


def assert_whole_copy(source: Any, target: Any, run_id: str) -> Any:
    """The target holds exactly one copy of the run, equal in everything a user sees."""
    copies = copies_of(target, run_id)
    assert len(copies) == 1
    copy = copies[0]
    original = source.get_run(run_id)
    assert copy.info.run_name == original.info.run_name
    assert copy.info.status == original.info.status
    assert copy.info.start_time == original.info.start_time
    assert copy.info.end_time == original.info.end_time
    assert copy.data.params == original.data.params
    wanted_tags = {k: v for k, v in original.data.tags.items() if k not in PUSH_STATE_TAGS}
    assert {k: v for k, v in copy.data.tags.items() if k not in PUSH_STATE_TAGS} == wanted_tags
    for key in original.data.metrics:
        assert points(target, copy.info.run_id, key) == points(source, run_id, key)
    assert artifact_files(target, copy.info.run_id) == artifact_files(source, run_id)
    return copy


def assert_model_loads(target_uri: str, copy: Any, module: Any) -> None:
    """The copy's model loads with agentnn's loader and predicts as the original module."""
    import numpy as np
    import torch

    from agentnn.sdk.nn_models import ModelManager

    model_id = copy.data.tags["agentnn.model_id"]
    loaded = ModelManager(target_uri).load_model(f"models:/{model_id}")
    x = np.random.default_rng(0).normal(size=(5, MLP_CONFIG["n_features"])).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    with torch.no_grad():
        got = loaded.module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def wait_for(condition: Callable[[], bool], timeout: float = REACH_TIMEOUT,
             what: str = "") -> None:
    """:func:`polling.wait_for` with this folder's patience."""
    polling.wait_for(condition, timeout, what)
