"""`push` carries the registry: versions keep their numbers where they can, aliases, tags and
descriptions follow, and `push --model` copies a registered model whole."""

from __future__ import annotations

import json

import mlflow
import pytest
from offline_helpers import MLP_CONFIG

from agentnn.mlflow_integration import ExperimentTracker
from agentnn.sdk.nn_models import ModelManager

MODEL = "agent-router"
BOOKKEEPING = ("agentnn.model_id", "agentnn.source_version")  # set per store by the push


def register_versions(store_uri: str, count: int) -> list[str]:
    """``count`` runs, each logging an MLP with its own weights as the next version of MODEL;
    returns their run ids."""
    import torch

    from agentnn.managers.builders import MLP_BUILDER, build_mlp
    from agentnn.mlflow_integration.models.format import log_torch_model

    tracker = ExperimentTracker("routing", tracking_uri=store_uri)
    run_ids = []
    for seed in range(count):
        torch.manual_seed(seed)
        with tracker.start_run(run_name=f"router-{seed}") as run:
            run.log_metric("val_loss", 1.0 / (seed + 1))
            log_torch_model(build_mlp(MLP_CONFIG), builder=MLP_BUILDER, config=MLP_CONFIG,
                            register_as=MODEL)
        run_ids.append(run.run_id)
    return run_ids


def describe_registry(client: mlflow.MlflowClient) -> dict:
    """Everything a user sees of MODEL: versions (tags, description), aliases, its own tags."""
    model = client.get_registered_model(MODEL)
    versions = {
        str(v.version): ({k: t for k, t in v.tags.items() if k not in BOOKKEEPING},
                         v.description or "")
        for v in client.search_model_versions(f"name = '{MODEL}'")
    }
    return {"versions": versions, "tags": dict(model.tags), "description": model.description or "",
            "aliases": {alias: str(number) for alias, number in model.aliases.items()}}


def curate(client: mlflow.MlflowClient) -> None:
    """What people add after training: tags, descriptions, and aliases on two versions."""
    client.set_registered_model_tag(MODEL, "owner", "routing-team")
    client.update_registered_model(MODEL, description="routes tasks to agents")
    client.set_model_version_tag(MODEL, "2", "validated", "true")
    client.update_model_version(MODEL, "2", description="best val_loss so far")
    client.set_registered_model_alias(MODEL, "champion", "2")
    client.set_registered_model_alias(MODEL, "challenger", "3")


def load_sha(cli, uri: str) -> str:
    loaded = cli("model", "load", f"models:/{MODEL}@champion", "--tracking-uri", uri)
    assert loaded.exit_code == 0, loaded.output
    return json.loads(loaded.stdout)["sha256"]


def test_push_model_to_an_empty_store_keeps_numbers_aliases_tags_and_weights(
    store_uri: str, second_store: str, cli
):
    register_versions(store_uri, 3)
    source = mlflow.MlflowClient(store_uri)
    curate(source)

    pushed = cli("model", "push", "--model", MODEL, "--to", second_store,
                 "--tracking-uri", store_uri, "--output", "json")

    assert pushed.exit_code == 0, pushed.output
    result = json.loads(pushed.stdout)
    assert [(v["source_version"], v["target_version"]) for v in result["versions"]] == [
        ("1", "1"), ("2", "2"), ("3", "3")]
    assert result["numbers_kept"] and "kept" in result["numbers"]
    assert [v["aliases"] for v in result["versions"]] == [[], ["champion"], ["challenger"]]
    target = mlflow.MlflowClient(second_store)
    assert describe_registry(target) == describe_registry(source)
    champion = load_sha(cli, store_uri)
    assert load_sha(cli, second_store) == champion
    other = ModelManager(store_uri).load_model(f"{MODEL}/1").sha256
    assert other != champion  # the alias picks out one version's weights, not any

    again = cli("model", "push", "--model", MODEL, "--to", second_store,
                "--tracking-uri", store_uri)

    assert again.exit_code == 0, again.output
    assert "kept; nothing new" in again.stdout
    assert describe_registry(target) == describe_registry(source)
    assert len(target.search_model_versions(f"name = '{MODEL}'")) == 3


def test_a_second_push_model_changes_nothing(store_uri: str, second_store: str):
    register_versions(store_uri, 2)
    manager = ModelManager(store_uri)
    manager.set_alias(MODEL, "champion", 1)
    first = manager.push_model(MODEL, second_store)

    again = manager.push_model(MODEL, second_store)

    assert first.changed and not again.changed
    assert [r.changed for r in again.runs] == [False, False]
    assert [v.target_version for v in again.versions] == ["1", "2"]
    assert ModelManager(second_store).load_model(f"{MODEL}@champion").version == "1"


def test_a_target_with_versions_of_that_name_gets_new_numbers_and_says_so(
    store_uri: str, second_store: str, cli
):
    register_versions(second_store, 1)  # the target's own version 1 of MODEL
    target = mlflow.MlflowClient(second_store)
    target.set_registered_model_alias(MODEL, "champion", "1")
    target.set_registered_model_tag(MODEL, "on-call", "ops")
    register_versions(store_uri, 2)
    source = mlflow.MlflowClient(store_uri)
    source.set_registered_model_alias(MODEL, "champion", "2")
    source.set_registered_model_tag(MODEL, "owner", "routing-team")

    pushed = cli("model", "push", "--model", MODEL, "--to", second_store,
                 "--tracking-uri", store_uri)

    assert pushed.exit_code == 0, pushed.output
    assert "cannot be kept: 1 -> 2, 2 -> 3" in pushed.stdout
    result = ModelManager(store_uri).push_model(MODEL, second_store)
    assert not result.numbers_kept and not result.changed
    assert [(v.source_version, v.target_version) for v in result.versions] == [
        ("1", "2"), ("2", "3")]
    assert str(target.get_model_version_by_alias(MODEL, "champion").version) == "3"  # moved
    assert target.get_registered_model(MODEL).tags == {"on-call": "ops", "owner": "routing-team"}
    assert ModelManager(second_store).load_model(f"{MODEL}@champion").sha256 == (
        ModelManager(store_uri).load_model(f"{MODEL}@champion").sha256)


def test_a_deleted_source_version_shifts_the_numbers_after_it_and_says_so(
    store_uri: str, second_store: str
):
    register_versions(store_uri, 3)
    mlflow.MlflowClient(store_uri).delete_model_version(MODEL, "2")

    result = ModelManager(store_uri).push_model(MODEL, second_store)

    assert [(v.source_version, v.target_version) for v in result.versions] == [
        ("1", "1"), ("3", "2")]
    assert not result.numbers_kept
    assert "version 2 of agent-router was deleted" in result.numbers
    assert "3 -> 2" in result.numbers


@pytest.mark.server
def test_pushing_one_run_carries_its_versions_alias_tags_and_description(
    store_uri: str, server_control, start_server
):
    run_id = register_versions(store_uri, 1)[0]
    source = mlflow.MlflowClient(store_uri)
    source.set_model_version_tag(MODEL, "1", "validated", "true")
    source.update_model_version(MODEL, "1", description="first router")
    source.set_registered_model_tag(MODEL, "owner", "routing-team")
    source.set_registered_model_alias(MODEL, "champion", "1")
    port = server_control[2]()
    start_server(port)
    server = f"http://127.0.0.1:{port}"
    manager = ModelManager(store_uri)

    first = manager.push_runs([run_id], to=server)[0]

    assert first.registered == [f"{MODEL}/1"] and first.aliases == [f"{MODEL}@champion"]
    assert first.versions == {f"{MODEL}/1": f"{MODEL}/1"}
    target = mlflow.MlflowClient(server)
    version = target.get_model_version_by_alias(MODEL, "champion")
    assert version.tags["validated"] == "true"
    assert describe_registry(target) == describe_registry(source)
    assert version.description == "first router"
    assert target.get_registered_model(MODEL).tags == {"owner": "routing-team"}

    source.update_model_version(MODEL, "1", description="first router, checked")
    second = manager.push_runs([run_id], to=server)[0]
    third = manager.push_runs([run_id], to=server)[0]

    assert second.registry == 1 and not second.aliases and not second.registered
    assert target.get_model_version(MODEL, "1").description == "first router, checked"
    assert not third.changed and third.summary() == "nothing new"
