"""Fixtures for the model format and loader: a small real MLP logged into a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest
from model_helpers import LoggedFixture, log_mlp


@pytest.fixture
def cache_dir(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private model cache, also for the process-wide loaders of load_model()."""
    path = workdir / "model-cache"
    monkeypatch.setenv("AGENTNN_CACHE_DIR", str(path))
    return path


@pytest.fixture
def logged(store_uri: str, cache_dir: Path) -> LoggedFixture:
    """A model registered as ``router`` (version 1) in a fresh store."""
    return log_mlp(store_uri, register_as="router")


@pytest.fixture
def loader(store_uri: str, cache_dir: Path):
    from agentnn.mlflow_integration.models.loading import ModelLoader

    return ModelLoader(store_uri, cache_dir=cache_dir)


@pytest.fixture
def client(store_uri: str):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=store_uri, registry_uri=store_uri)
