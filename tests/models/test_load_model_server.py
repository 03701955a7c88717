"""Loading through a real `mlflow server` with proxied artifacts: alias, cache and tamper-free."""

from __future__ import annotations

import uuid

import pytest
from model_helpers import assert_same_outputs, log_mlp

from agentnn.errors import NotFoundError
from agentnn.mlflow_integration.models.loading import ModelLoader

pytestmark = pytest.mark.server


def test_registered_model_loads_from_a_tracking_server_and_is_cached(
    mlflow_server, cache_dir, session_journal_dir, monkeypatch
):
    import mlflow

    monkeypatch.setenv("AGENTNN_JOURNAL_DIR", str(session_journal_dir))
    name = f"router-{uuid.uuid4().hex[:8]}"
    logged = log_mlp(mlflow_server, register_as=name)
    mlflow.MlflowClient(mlflow_server).set_registered_model_alias(name, "champion", "1")

    loader = ModelLoader(mlflow_server, cache_dir=cache_dir)
    loaded = loader.load(f"{name}@champion")
    assert loaded.version == "1" and loaded.sha256 == logged.info.sha256
    assert_same_outputs(loaded.module, logged.module, logged.inputs)
    assert loader.load(f"models:/{name}/1").cache == "memory"
    assert loader.load(logged.info.model_id).cache == "download"  # another cache key, same model
    assert loader.stats.downloads == 2
    with pytest.raises(NotFoundError):
        loader.load(f"{name}@nobody")
