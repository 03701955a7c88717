"""Fixtures for the runtime ModelManager: fresh SQLite stores and a tiny real routing model."""

from __future__ import annotations

from pathlib import Path

import pytest

AGENTS = ["finance", "legal", "tech"]
PROTOTYPES = {  # one typical task per agent; the router scores a task by overlap with these
    "finance": "quarterly budget invoice revenue forecast for the accounts",
    "legal": "review the contract clause for compliance and liability",
    "tech": "debug the failing server deployment and fix the python stack trace",
}


@pytest.fixture
def store_uri(store_uri: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The fresh store of the root fixture, with a private model cache."""
    monkeypatch.setenv("AGENTNN_CACHE_DIR", str(workdir / "model-cache"))
    return store_uri


@pytest.fixture
def client(store_uri: str):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=store_uri, registry_uri=store_uri)


@pytest.fixture
def router_version(store_uri: str) -> str:
    """A routing model registered as ``agent-router`` version 1 with alias ``champion``.

    Its single linear layer holds the featurised prototype of each agent, so a task routes to
    the agent whose prototype shares the most words with it: real torch, no training needed.
    """
    import mlflow
    import torch

    from agentnn.data import HashingFeaturizer, routing_metadata
    from agentnn.managers.builders import MLP_BUILDER, build_mlp
    from agentnn.mlflow_integration import ExperimentTracker
    from agentnn.mlflow_integration.models.format import log_torch_model

    featurizer = HashingFeaturizer(dim=64)
    config = {"n_features": 64, "hidden": [], "n_outputs": len(AGENTS)}
    module = build_mlp(config)
    with torch.no_grad():
        module.heads["out"].weight.copy_(
            torch.from_numpy(featurizer.transform([PROTOTYPES[a] for a in AGENTS]))
        )
        module.heads["out"].bias.zero_()
    with ExperimentTracker("routing", tracking_uri=store_uri).start_run():
        info = log_torch_model(module, builder=MLP_BUILDER, config=config,
                               metadata=routing_metadata(AGENTS, featurizer),
                               register_as="agent-router")
    mlflow.MlflowClient(store_uri).set_registered_model_alias("agent-router", "champion", "1")
    return str(info.registered_version)
