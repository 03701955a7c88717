"""load_model: every URI form, the caches, a moving alias, tampering, trust and unknown names."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import pytest
from model_helpers import assert_same_outputs, log_mlp, make_mlp

from agentnn.errors import (
    ModelIntegrityError,
    NotFoundError,
    TrackingURIError,
    UnsafeModelError,
)
from agentnn.mlflow_integration.models.format import DATA_DIR_NAME, WEIGHTS_FILE
from agentnn.mlflow_integration.models.loading import ModelLoader, load_model


def uri_forms(info) -> list[str]:
    return [
        "router@champion", "router/1", "models:/router@champion", "models:/router/1",
        "router/latest", f"runs:/{info.run_id}/model", info.model_id, info.model_uri,
    ]


def test_every_uri_form_loads_the_same_module_in_eval_mode(logged, client, store_uri):
    client.set_registered_model_alias("router", "champion", "1")
    for uri in uri_forms(logged.info):
        loaded = load_model(uri, tracking_uri=store_uri)
        assert not loaded.module.training, uri
        assert_same_outputs(loaded.module, logged.module, logged.inputs)
        assert loaded.sha256 == logged.info.sha256 and loaded.safe
        assert loaded.model_id == logged.info.model_id, uri
        assert loaded.run_id == logged.info.run_id, uri
        assert loaded.metadata == {"agents": ["finance", "legal", "tech"]}
    assert load_model("router@champion", tracking_uri=store_uri).version == "1"


def test_a_local_folder_loads_without_the_store(logged, loader):
    folder = loader.load("router/1").path
    copy = folder.parent / "copied"
    shutil.copytree(folder, copy)
    loaded = loader.load(str(copy))
    assert loaded.cache == "local"
    assert_same_outputs(loaded.module, logged.module, logged.inputs)


def test_second_load_of_a_version_downloads_nothing(logged, loader, store_uri, cache_dir):
    assert loader.load("router/1").cache == "download"
    assert loader.load("router/1").cache == "memory"
    fresh = ModelLoader(store_uri, cache_dir=cache_dir)  # a new process: disk cache only
    assert fresh.load("router/1").cache == "disk"
    assert (loader.stats.downloads, fresh.stats.downloads) == (1, 0)
    assert fresh.stats.disk_hits == 1 and loader.stats.memory_hits == 1


def test_moving_the_alias_is_noticed(logged, loader, client, store_uri):
    second = log_mlp(store_uri, seed=1, register_as="router")
    client.set_registered_model_alias("router", "champion", "1")
    first_load = loader.load("router@champion")
    assert first_load.version == "1"
    assert_same_outputs(first_load.module, logged.module, logged.inputs)

    client.set_registered_model_alias("router", "champion", "2")
    moved = loader.load("router@champion")
    assert moved.version == "2" and moved.alias == "champion"
    assert_same_outputs(moved.module, second.module, logged.inputs)
    assert loader.stats.downloads == 2


def _cached_weights(loaded) -> Path:
    return loaded.path / "data" / DATA_DIR_NAME / WEIGHTS_FILE


def _tamper(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # flip bits of the last weight byte: the file still parses
    path.write_bytes(bytes(data))


def test_tampered_weights_in_the_cache_are_refused(logged, loader, store_uri, cache_dir):
    weights = _cached_weights(loader.load("router/1"))
    _tamper(weights)
    with pytest.raises(ModelIntegrityError, match="sha256"):
        ModelLoader(store_uri, cache_dir=cache_dir).load("router/1")


def test_tampered_weights_in_the_artifact_store_are_refused_and_not_cached(
    logged, loader, client
):
    location = client.get_logged_model(logged.info.model_id).artifact_location
    _tamper(Path(urlparse(location).path) / "data" / DATA_DIR_NAME / WEIGHTS_FILE)
    with pytest.raises(ModelIntegrityError):
        loader.load("router/1")
    assert not (loader.cache_dir / "versions" / "router" / "1").exists()


def test_pickled_mlflow_pytorch_model_needs_trust(store_uri, loader):
    mlflow.set_tracking_uri(store_uri)
    module = make_mlp()
    with mlflow.start_run() as run:
        mlflow.pytorch.log_model(module, name="pickled", pip_requirements=["torch"],
                                 serialization_format="pickle")
    uri = f"runs:/{run.info.run_id}/pickled"
    with pytest.raises(UnsafeModelError, match="unpickling runs whatever code.*trust=True"):
        loader.load(uri)
    trusted = loader.load(uri, trust=True)
    assert not trusted.safe and trusted.sha256 is None
    assert_same_outputs(trusted.module, module, __import__("numpy").ones((2, 6), "float32"))
    with pytest.raises(UnsafeModelError):  # the memory cache does not lift the rule
        loader.load(uri)


@pytest.mark.parametrize("uri, kind", [
    ("nobody@champion", "registered model"),
    ("router@nobody", "alias"),
    ("router/7", "model version"),
    ("models:/nobody/1", "registered model"),
    ("runs:/0123456789abcdef0123456789abcdef/model", "run"),
    ("m-0123456789abcdef0123456789abcdef", "model"),
    ("just-a-name", "model"),
])
def test_unknown_models_raise_not_found_naming_what(logged, loader, uri, kind):
    with pytest.raises(NotFoundError) as caught:
        loader.load(uri)
    assert caught.value.kind == kind


def test_a_run_without_that_model_path_is_not_found(logged, loader):
    with pytest.raises(NotFoundError, match="no model files"):
        loader.load(f"runs:/{logged.info.run_id}/elsewhere")


def test_legacy_stage_uri_resolves_with_a_deprecation_warning(logged, loader, client):
    with pytest.warns(FutureWarning):  # MLflow's own notice for the deprecated call
        client.transition_model_version_stage("router", "1", "Production")
    with pytest.warns(DeprecationWarning, match="router@champion"):
        loaded = loader.load("models:/router/Production")
    assert loaded.version == "1"
    with pytest.warns(DeprecationWarning), pytest.raises(NotFoundError, match="no version"):
        loader.load("models:/router/Staging")


def test_a_malformed_tracking_uri_is_refused_before_any_lookup(cache_dir):
    with pytest.raises(TrackingURIError, match="ftp"):
        load_model("router@champion", tracking_uri="ftp://example.org/store")


def test_loading_ignores_mlflows_process_wide_tracking_uri(
    logged, loader, workdir, template_store
):
    shutil.copy(template_store, workdir / "other.db")
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'other.db'}")  # another, empty store
    for uri in ("router/1", f"runs:/{logged.info.run_id}/model", logged.info.model_id):
        loaded = loader.load(uri)
        assert loaded.cache == "download", uri
        assert_same_outputs(loaded.module, logged.module, logged.inputs)
