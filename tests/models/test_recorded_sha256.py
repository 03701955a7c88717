"""A model from the store is checked against the sha256 the store recorded when it was logged,
not only against the copy inside its folder: rewriting the weights together with spec.json's
sha256 (in the artifact store or in the local cache) is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest
from model_helpers import MLP_CONFIG, make_mlp

from agentnn.errors import ModelIntegrityError
from agentnn.managers.builders import MLP_BUILDER
from agentnn.mlflow_integration.models.format import (
    DATA_DIR_NAME,
    SHA256_TAG,
    SPEC_FILE,
    WEIGHTS_FILE,
    save_torch_model,
)
from agentnn.mlflow_integration.models.loading import ModelLoader


def _swap_in_other_weights(model_folder: Path, scratch: Path) -> None:
    """Replace the weights by another model's and make spec.json agree: the folder's own
    check passes afterwards."""
    other = save_torch_model(make_mlp(seed=7), scratch, builder=MLP_BUILDER, config=MLP_CONFIG)
    data = model_folder / "data" / DATA_DIR_NAME
    shutil.copyfile(other / WEIGHTS_FILE, data / WEIGHTS_FILE)
    spec = json.loads((data / SPEC_FILE).read_text())
    spec["sha256"] = json.loads((other / SPEC_FILE).read_text())["sha256"]
    (data / SPEC_FILE).write_text(json.dumps(spec))


def _artifact_folder(client, model_id: str) -> Path:
    return Path(urlparse(client.get_logged_model(model_id).artifact_location).path)


def test_the_sha256_is_recorded_on_the_logged_model(logged, client):
    tags = client.get_logged_model(logged.info.model_id).tags
    assert tags[SHA256_TAG] == logged.info.sha256


@pytest.mark.parametrize("form", ["version", "runs", "model_id"])
def test_rewritten_weights_and_spec_in_the_artifact_store_are_refused(
    logged, loader, client, tmp_path, form
):
    _swap_in_other_weights(_artifact_folder(client, logged.info.model_id), tmp_path / "other")
    uri = {"version": "router/1", "runs": f"runs:/{logged.info.run_id}/model",
           "model_id": logged.info.model_id}[form]
    with pytest.raises(ModelIntegrityError, match="changed after it was logged") as caught:
        loader.load(uri)
    assert caught.value.expected == logged.info.sha256
    assert not any(path.is_dir() for path in loader.cache_dir.rglob("*")
                   if path.name in ("1", logged.info.model_id, "model"))


def test_rewritten_weights_and_spec_in_the_cache_are_refused(
    logged, loader, store_uri, cache_dir, tmp_path
):
    cached = loader.load("router/1").path
    _swap_in_other_weights(cached, tmp_path / "other")
    fresh = ModelLoader(store_uri, cache_dir=cache_dir)  # a new process reads the disk cache
    with pytest.raises(ModelIntegrityError, match="changed after it was logged"):
        fresh.load("router/1")


def test_an_untouched_model_loads_from_every_form(logged, loader):
    for uri in ("router/1", f"runs:/{logged.info.run_id}/model", logged.info.model_id):
        assert loader.load(uri).sha256 == logged.info.sha256
