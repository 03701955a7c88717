"""ModelManager.load: a ready module, and one run in model_management per load, failed or not."""

from __future__ import annotations

import pytest

from agentnn.errors import NotFoundError
from agentnn.managers.model_manager import LOAD_EXPERIMENT, ModelManager


def _load_runs(client):
    experiment = client.get_experiment_by_name(LOAD_EXPERIMENT)
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def test_each_load_is_a_run_with_what_it_resolved_to(store_uri, client, router_version):
    manager = ModelManager(store_uri)
    module = manager.load("agent-router@champion")
    assert not module.training
    manager.load("agent-router/1")

    first, second = _load_runs(client)
    assert first.info.status == second.info.status == "FINISHED"
    sha256 = client.get_logged_model(
        client.get_model_version("agent-router", "1").source.split("/")[-1]
    ).tags["agentnn.sha256"]
    assert first.data.params["source"] == "agent-router@champion"
    assert first.data.params["resolved_uri"] == "models:/agent-router/1"
    assert first.data.params["version"] == router_version == "1"
    assert first.data.params["alias"] == "champion"
    assert first.data.params["sha256"] == sha256
    assert first.data.params["device"] == "cpu"
    assert first.data.params["cache_hit"] == "False"
    assert second.data.params["cache_hit"] == "True"
    assert second.data.params["cache"] == "memory"
    assert "load_time_s" in first.data.metrics
    assert (first.data.metrics["cache_hit"], second.data.metrics["cache_hit"]) == (0.0, 1.0)


def test_a_failed_load_leaves_a_failed_run_and_raises(store_uri, client, router_version):
    with pytest.raises(NotFoundError, match="alias 'agent-router@nobody'"):
        ModelManager(store_uri).load("agent-router@nobody")
    (run,) = _load_runs(client)
    assert run.info.status == "FAILED"
    assert run.data.params["source"] == "agent-router@nobody"


def test_loading_inside_a_users_run_records_a_child_and_keeps_the_users_run(
    store_uri, client, router_version
):
    import mlflow

    mlflow.set_tracking_uri(store_uri)
    with mlflow.start_run() as outer:
        ModelManager(store_uri).load("agent-router/1")
        assert mlflow.active_run().info.run_id == outer.info.run_id
    (load_run,) = _load_runs(client)
    assert load_run.data.tags["mlflow.parentRunId"] == outer.info.run_id
    assert client.get_run(outer.info.run_id).info.status == "FINISHED"
