"""Fixtures for the trainer tests: small real data sets and trackers on a SQLite store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROUTING_RECORDS = 1000  # enough for routing accuracy >= 0.8 with 4 agents in a few epochs
ROUTING_AGENTS = 4


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> None:
    """Tiny models train faster on one thread than on cores other processes also use."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def routing_data() -> Any:
    """A synthetic interaction log of 4 agents, split by seed 0."""
    from agentnn.data import build_interaction_dataset, synthesize_interactions

    records = synthesize_interactions(ROUTING_RECORDS, ROUTING_AGENTS, seed=0)
    return build_interaction_dataset(records, seed=0)


@pytest.fixture(scope="session")
def small_routing_data() -> Any:
    """A 200-record log for tests about tracking rather than accuracy."""
    from agentnn.data import build_interaction_dataset, synthesize_interactions

    return build_interaction_dataset(synthesize_interactions(200, ROUTING_AGENTS, seed=1), seed=0)


@pytest.fixture(scope="session")
def digits_data() -> Any:
    from agentnn.data import load_digits_dataset

    return load_digits_dataset(seed=0)


@pytest.fixture
def model_cache(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Downloaded models go to the test's folder, not the user's cache."""
    cache = workdir / "model-cache"
    monkeypatch.setenv("AGENTNN_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def make_tracker(store_uri: str) -> Callable[[str], Any]:
    """``make_tracker("advanced_training")``: an ExperimentTracker on the test's store."""
    from agentnn.mlflow_integration import ExperimentTracker

    return lambda experiment: ExperimentTracker(experiment, tracking_uri=store_uri)


@pytest.fixture
def client(store_uri: str) -> Any:
    import mlflow

    return mlflow.MlflowClient(tracking_uri=store_uri)
