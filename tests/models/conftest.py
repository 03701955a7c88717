"""Fixtures for the model format and loader: a small real MLP logged into a real SQLite store."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

N_FEATURES = 6
MLP_CONFIG = {"n_features": N_FEATURES, "hidden": [8], "heads": {"agent_logits": 3, "success": 1}}


@dataclass
class LoggedFixture:
    """A model logged once, and everything a test needs to reload and compare it."""

    module: object
    info: object
    inputs: np.ndarray
    tracking_uri: str


def expected_outputs(module, inputs: np.ndarray) -> dict[str, np.ndarray]:
    import torch

    module.eval()
    with torch.no_grad():
        output = module(torch.from_numpy(inputs))
    return {key: value.numpy() for key, value in output.items()}


def assert_same_outputs(module, reference, inputs: np.ndarray) -> None:
    got, want = expected_outputs(module, inputs), expected_outputs(reference, inputs)
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key])


def make_mlp(seed: int = 0):
    import torch

    from agentnn.managers.builders import build_mlp

    torch.manual_seed(seed)
    return build_mlp(MLP_CONFIG)


def log_mlp(tracking_uri: str, *, seed: int = 0, register_as: str | None = None,
            name: str = "model") -> LoggedFixture:
    """Train nothing, just log a seeded MLP inside a tracked run and return where it went."""
    from agentnn.managers.builders import MLP_BUILDER
    from agentnn.mlflow_integration import ExperimentTracker
    from agentnn.mlflow_integration.model_format import log_torch_model

    module = make_mlp(seed)
    inputs = np.random.default_rng(seed).random((4, N_FEATURES), dtype=np.float32)
    with ExperimentTracker("model_tests", tracking_uri=tracking_uri).start_run():
        info = log_torch_model(module, builder=MLP_BUILDER, config=MLP_CONFIG, name=name,
                               input_example=inputs, register_as=register_as,
                               metadata={"agents": ["finance", "legal", "tech"]})
    return LoggedFixture(module=module, info=info, inputs=inputs, tracking_uri=tracking_uri)


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
