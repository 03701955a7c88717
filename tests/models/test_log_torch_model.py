"""log_torch_model: a safe-format pyfunc model in the active run, findable and registrable."""

from __future__ import annotations

import json

import mlflow
import pytest
from model_helpers import MLP_CONFIG, N_FEATURES, log_mlp, make_mlp

from agentnn.errors import ModelError, UntrustedBuilderError
from agentnn.managers.builders import MLP_BUILDER
from agentnn.mlflow_integration.models.format import (
    FORMAT_TAG,
    LOADER_MODULE,
    RUN_MODEL_ID_TAG,
    RUN_MODEL_URI_TAG,
    SHA256_TAG,
    log_torch_model,
)


def test_logged_model_is_tagged_on_its_run_and_carries_a_signature(store_uri, cache_dir, client):
    logged = log_mlp(store_uri)
    info = logged.info
    assert info.model_uri == f"models:/{info.model_id}"
    assert info.registered_version is None and info.registered_name is None
    run = client.get_run(info.run_id)
    assert run.data.tags[RUN_MODEL_ID_TAG] == info.model_id
    assert run.data.tags[RUN_MODEL_URI_TAG] == info.model_uri
    model = client.get_logged_model(info.model_id)
    assert model.source_run_id == info.run_id
    assert model.tags[FORMAT_TAG] == "safetensors-v1"
    assert model.tags[SHA256_TAG] == info.sha256

    mlmodel = mlflow.models.get_model_info(info.model_uri)
    assert mlmodel.flavors["python_function"]["loader_module"] == LOADER_MODULE
    assert "pytorch" not in mlmodel.flavors  # nothing pickled
    signature = mlmodel.signature.to_dict()
    assert json.loads(signature["inputs"])[0]["tensor-spec"]["shape"] == [-1, N_FEATURES]
    assert {o["name"] for o in json.loads(signature["outputs"])} == {"agent_logits", "success"}


def test_register_as_creates_a_version_each_time(store_uri, cache_dir, client):
    first = log_mlp(store_uri, register_as="router").info
    second = log_mlp(store_uri, register_as="router", seed=1).info
    assert (first.registered_name, first.registered_version) == ("router", 1)
    assert second.registered_version == 2
    assert client.get_model_version("router", "2").run_id == second.run_id


def test_builder_outside_agentnn_is_refused_before_anything_is_logged(store_uri, client):
    mlflow.set_tracking_uri(store_uri)
    with mlflow.start_run() as run:
        with pytest.raises(UntrustedBuilderError, match="os:system"):
            log_torch_model(make_mlp(), builder="os:system", config=MLP_CONFIG)
    assert client.search_logged_models(experiment_ids=[run.info.experiment_id]) == []


def test_a_config_that_cannot_rebuild_the_module_is_refused(store_uri):
    mlflow.set_tracking_uri(store_uri)
    with mlflow.start_run(), pytest.raises(ModelError, match="does not rebuild"):
        log_torch_model(make_mlp(), builder=MLP_BUILDER, config={**MLP_CONFIG, "hidden": [9]})


def test_logging_without_an_active_run_says_where_to_call_it(store_uri):
    mlflow.set_tracking_uri(store_uri)
    with pytest.raises(ModelError, match="active MLflow run"):
        log_torch_model(make_mlp(), builder=MLP_BUILDER, config=MLP_CONFIG)


def test_config_that_is_not_json_is_refused(store_uri):
    mlflow.set_tracking_uri(store_uri)
    with mlflow.start_run(), pytest.raises(ModelError, match="JSON"):
        log_torch_model(make_mlp(), builder=MLP_BUILDER, config={**MLP_CONFIG, "x": object()})
