"""Malformed, tampered and hostile model folders: every one ends in one of agentnn's errors, in
one line; no path leaves the folder; nothing a file names is ever called."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from model_helpers import MLP_CONFIG, make_mlp

from agentnn.errors import (
    MalformedModelError,
    ModelError,
    ModelIntegrityError,
    UntrustedBuilderError,
)
from agentnn.managers.builders import MLP_BUILDER
from agentnn.mlflow_integration.models.format import (
    DATA_DIR_NAME,
    SPEC_FILE,
    WEIGHTS_FILE,
    file_sha256,
    load_torch_model,
    save_torch_model,
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return save_torch_model(make_mlp(), tmp_path / "model", builder=MLP_BUILDER,
                            config=MLP_CONFIG)


def _spec(folder: Path) -> dict:
    return json.loads((folder / SPEC_FILE).read_text())


def _write_spec(folder: Path, spec: object) -> None:
    (folder / SPEC_FILE).write_text(json.dumps(spec))


def _decoy(tmp_path: Path) -> Path:
    """Valid weights of the same model outside the folder: loading them would succeed."""
    outside = save_torch_model(make_mlp(seed=5), tmp_path / "outside", builder=MLP_BUILDER,
                               config=MLP_CONFIG)
    return outside / WEIGHTS_FILE


def _one_line(error: BaseException) -> None:
    assert "\n" not in str(error) and "Traceback" not in str(error)


@pytest.mark.parametrize("weights", ["ABSOLUTE", "../outside/weights.safetensors",
                                     "sub/../../outside/weights.safetensors", "", "a\x00b"])
def test_a_weights_path_outside_the_folder_is_refused(folder, tmp_path, weights):
    decoy = _decoy(tmp_path)
    path = str(decoy) if weights == "ABSOLUTE" else weights
    _write_spec(folder, {**_spec(folder), "weights": path, "sha256": file_sha256(decoy)})
    with pytest.raises(MalformedModelError) as caught:
        load_torch_model(folder)
    _one_line(caught.value)


def test_a_symlink_leading_out_of_the_folder_is_refused(folder, tmp_path):
    decoy = _decoy(tmp_path)
    (folder / WEIGHTS_FILE).unlink()
    (folder / WEIGHTS_FILE).symlink_to(decoy)
    _write_spec(folder, {**_spec(folder), "sha256": file_sha256(decoy)})
    with pytest.raises(MalformedModelError, match="symlink"):
        load_torch_model(folder)


def test_a_spec_json_symlink_leading_out_is_refused(folder, tmp_path):
    outside = tmp_path / "spec-elsewhere.json"
    outside.write_text((folder / SPEC_FILE).read_text())
    (folder / SPEC_FILE).unlink()
    (folder / SPEC_FILE).symlink_to(outside)
    with pytest.raises(MalformedModelError, match="symlink"):
        load_torch_model(folder)


def test_weights_that_are_not_safetensors_are_refused_in_one_line(folder):
    (folder / WEIGHTS_FILE).write_bytes(b"PK\x03\x04 this is a pickle zip, honest")
    _write_spec(folder, {**_spec(folder), "sha256": file_sha256(folder / WEIGHTS_FILE)})
    with pytest.raises(MalformedModelError, match="not a safetensors file") as caught:
        load_torch_model(folder)
    _one_line(caught.value)


@pytest.mark.parametrize("n_features, hidden, match", [
    (10**7, [10**6], "do not fit"),  # 40 TB of float32, checked on the meta device
    (10**12, [10**9], "cannot build"),  # too large even to describe
])
def test_a_config_asking_for_huge_shapes_allocates_nothing(folder, n_features, hidden, match):
    config = {**MLP_CONFIG, "n_features": n_features, "hidden": hidden}
    _write_spec(folder, {**_spec(folder), "config": config})
    with pytest.raises(MalformedModelError, match=match):
        load_torch_model(folder)


@pytest.mark.parametrize("text, match", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"format_version": NaN}', "not valid JSON"),
    ("[" * 100_000, "not valid JSON"),
])
def test_a_spec_that_is_not_a_json_object_is_refused(folder, text, match):
    (folder / SPEC_FILE).write_text(text)
    with pytest.raises(MalformedModelError, match=match):
        load_torch_model(folder)


@pytest.mark.parametrize("changes, match", [
    ({"config": [1, 2]}, "config must be a dict"),
    ({"sha256": 12}, "sha256 must be a str"),
    ({"sha256": "not-hex"}, "not a hex sha256"),
    ({"format_version": "1"}, "format_version must be an integer"),
    ({"weights": ["x"]}, "weights must be a str"),
    ({"config": {**MLP_CONFIG, "n_features": -3}}, "cannot build from its config"),
    ({"config": {**MLP_CONFIG, "hidden": "eight"}}, "cannot build from its config"),
])
def test_wrong_types_in_the_spec_are_refused(folder, changes, match):
    _write_spec(folder, {**_spec(folder), **changes})
    with pytest.raises(MalformedModelError, match=match) as caught:
        load_torch_model(folder)
    _one_line(caught.value)


def test_a_spec_missing_keys_names_them(folder):
    spec = _spec(folder)
    del spec["config"], spec["sha256"]
    _write_spec(folder, spec)
    with pytest.raises(MalformedModelError, match="lacks config, sha256"):
        load_torch_model(folder)


# --- the MLflow model folder around the safe format -----------------------------------------


@pytest.fixture
def mlflow_folder(tmp_path: Path, folder: Path) -> Path:
    """An MLflow model folder as log_torch_model writes it, without a store."""
    root = tmp_path / "mlflow-model"
    shutil.copytree(folder, root / "data" / DATA_DIR_NAME)
    mlmodel = {"flavors": {"python_function": {
        "loader_module": "agentnn.mlflow_integration.models.format",
        "data": f"data/{DATA_DIR_NAME}"}}}
    (root / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    return root


@pytest.fixture
def loader(store_uri: str, tmp_path: Path):
    from agentnn.mlflow_integration.models.loading import ModelLoader

    return ModelLoader(store_uri, cache_dir=tmp_path / "cache")


def _set_mlmodel(root: Path, mlmodel: object) -> None:
    (root / "MLmodel").write_text(yaml.safe_dump(mlmodel))


def test_an_mlflow_folder_in_the_safe_format_loads(mlflow_folder, loader):
    loaded = loader.load(str(mlflow_folder))
    assert loaded.safe and loaded.format == "safetensors" and not loaded.module.training


@pytest.mark.parametrize("data", ["ABSOLUTE", "../model", "data/../../model", None, 7])
def test_an_mlmodel_data_path_outside_the_folder_is_refused(mlflow_folder, loader, folder, data):
    path = str(folder) if data == "ABSOLUTE" else data
    _set_mlmodel(mlflow_folder, {"flavors": {"python_function": {
        "loader_module": "agentnn.mlflow_integration.models.format", "data": path}}})
    with pytest.raises(MalformedModelError):
        loader.load(str(mlflow_folder))


@pytest.mark.parametrize("model_data", ["/etc", "../..", "data/../../x"])
def test_a_pytorch_flavour_data_path_outside_the_folder_is_refused(mlflow_folder, loader,
                                                                   model_data):
    _set_mlmodel(mlflow_folder, {"flavors": {"pytorch": {"model_data": model_data}}})
    with pytest.raises(MalformedModelError, match="leaves the model folder"):
        loader.load(str(mlflow_folder), trust=True)


@pytest.mark.parametrize("text", ["flavors: [1, 2", "- just\n- a list\n", "flavors: 3\n",
                                  "flavors: {python_function: 3}\n", "run_id: [1]\nflavors: {}\n",
                                  "!!python/object/apply:os.system ['true']\n"])
def test_a_malformed_mlmodel_is_refused_in_one_line(mlflow_folder, loader, text):
    (mlflow_folder / "MLmodel").write_text(text)
    with pytest.raises(MalformedModelError) as caught:
        loader.load(str(mlflow_folder))
    _one_line(caught.value)


def test_an_mlmodel_with_no_pytorch_flavour_is_named(mlflow_folder, loader):
    _set_mlmodel(mlflow_folder, {"flavors": {"sklearn": {"pickled_model": "model.pkl"}}})
    with pytest.raises(ModelError, match="not a PyTorch model.*sklearn"):
        loader.load(str(mlflow_folder))


def test_tampered_weights_inside_an_mlflow_folder_are_refused(mlflow_folder, loader):
    weights = mlflow_folder / "data" / DATA_DIR_NAME / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        loader.load(str(mlflow_folder))


def test_errors_are_agentnn_errors_with_the_bad_value(folder):
    _write_spec(folder, {**_spec(folder), "builder": "os:system"})
    with pytest.raises(UntrustedBuilderError) as caught:
        load_torch_model(folder)
    assert caught.value.builder == "os:system"
    assert not os.path.exists("system")
