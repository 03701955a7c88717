"""Fixtures for the model format and loader: a small real MLP logged into a real SQLite store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from model_helpers import LoggedFixture, log_mlp


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated SQLite store; copying it is far cheaper than migrating anew."""
    import mlflow

    path = tmp_path_factory.mktemp("template-store") / "store.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture(scope="session")
def shared_journal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One journal folder for the session, so one writer process serves every test's runs."""
    return tmp_path_factory.mktemp("journal")


@pytest.fixture
def store_uri(workdir: Path, template_db: Path, shared_journal_dir: Path,
              monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite store in the working directory (a copy of the migrated template)."""
    shutil.copy(template_db, workdir / "store.db")
    monkeypatch.setenv("AGENTNN_JOURNAL_DIR", str(shared_journal_dir))
    return f"sqlite:///{workdir / 'store.db'}"


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
    from agentnn.mlflow_integration.model_loading import ModelLoader

    return ModelLoader(store_uri, cache_dir=cache_dir)


@pytest.fixture
def client(store_uri: str):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=store_uri, registry_uri=store_uri)
