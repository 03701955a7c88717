"""ModelManager.load_model: delegates to the one loader, by alias, version, run and stage."""

from __future__ import annotations

import warnings

import pytest

from agentnn.errors import NotFoundError, UnsafeModelError
from agentnn.sdk.nn_models import ModelManager

MLP_CONFIG = {"n_features": 4, "hidden": [5], "heads": {"agent_logits": 3}}



@pytest.fixture
def store(populated_copy, workdir, monkeypatch):
    """The populated store plus a safe-format MLP and a pickled one, logged by plain MLflow."""
    import mlflow
    import torch

    from agentnn.managers.builders import MLP_BUILDER, build_mlp
    from agentnn.mlflow_integration.model_format import log_torch_model

    monkeypatch.setenv("AGENTNN_CACHE_DIR", str(workdir / "model-cache"))
    torch.manual_seed(0)
    safe_module = build_mlp(MLP_CONFIG)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(populated_copy["uri"])
    try:
        with mlflow.start_run(experiment_id=populated_copy["routing_experiment"]) as safe_run:
            log_torch_model(safe_module, builder=MLP_BUILDER, config=MLP_CONFIG)
        with mlflow.start_run(experiment_id=populated_copy["routing_experiment"]) as pickled_run:
            mlflow.pytorch.log_model(torch.nn.Linear(4, 2), name="model",
                                     pip_requirements=["torch"], serialization_format="pickle")
    finally:
        mlflow.set_tracking_uri(previous)  # as in a fresh process: the SDK must not need it
    manager = ModelManager(populated_copy["uri"])
    manager.register_model(safe_run.info.run_id, "router", alias="champion")
    manager.register_model(pickled_run.info.run_id, "pickled")
    return {"manager": manager, "module": safe_module, "safe_run": safe_run.info.run_id,
            "uri": populated_copy["uri"]}


def test_a_model_loads_by_run_with_the_same_outputs_and_leaves_mlflow_globals_alone(store):
    import mlflow
    import torch

    inputs = torch.rand(3, 4)
    loaded = store["manager"].load_model(f"runs:/{store['safe_run']}/model")
    with torch.no_grad():
        assert torch.equal(loaded.module(inputs)["agent_logits"],
                           store["module"](inputs)["agent_logits"])
    assert mlflow.get_tracking_uri() != store["uri"]


@pytest.mark.parametrize("uri", ["router@champion", "router/1"])
def test_a_model_loads_by_alias_and_version_with_the_same_outputs(store, uri):
    import torch

    inputs = torch.rand(3, 4)
    loaded = store["manager"].load_model(uri)
    with torch.no_grad():
        assert torch.equal(loaded.module(inputs)["agent_logits"],
                           store["module"](inputs)["agent_logits"])
    assert loaded.version == "1"


def test_a_pickled_model_needs_trust(store):
    with pytest.raises(UnsafeModelError):
        store["manager"].load_model("pickled/1")
    loaded = store["manager"].load_model("pickled/1", trust=True)
    assert loaded.safe is False


def test_a_legacy_stage_uri_resolves_with_a_deprecation_warning(store):
    from mlflow.tracking import MlflowClient

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = MlflowClient(store["uri"], registry_uri=store["uri"])
        client.transition_model_version_stage("router", "1", "Production")
    with pytest.warns(DeprecationWarning, match="stage"):
        loaded = store["manager"].load_model("models:/router/Production")
    assert loaded.version == "1"


def test_an_unknown_alias_is_a_not_found_error(store):
    with pytest.raises(NotFoundError, match="router@ghost"):
        store["manager"].load_model("router@ghost")
