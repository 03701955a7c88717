"""ModelManager.load_model: delegates to the one loader, by alias, version, run and stage."""

from __future__ import annotations

import warnings

import pytest

from agentnn.errors import NotFoundError, UnsafeModelError

MLP_CONFIG = {"n_features": 4, "hidden": [5], "heads": {"agent_logits": 3}}



@pytest.fixture
def store(populated_copy, log_router_and_pickled):
    """The populated store plus a safe-format MLP and a pickled one, logged by plain MLflow."""
    return log_router_and_pickled(
        populated_copy["uri"], populated_copy["routing_experiment"], MLP_CONFIG
    )


def test_a_model_loads_by_run_with_the_same_outputs_and_plain_mlflow_sees_that_store(store):
    import mlflow
    import torch

    inputs = torch.rand(3, 4)
    loaded = store["manager"].load_model(f"runs:/{store['safe_run']}/model")
    with torch.no_grad():
        assert torch.equal(loaded.module(inputs)["agent_logits"],
                           store["module"](inputs)["agent_logits"])
    assert mlflow.get_tracking_uri() == store["manager"].tracking_uri  # the user's mlflow.* too


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
