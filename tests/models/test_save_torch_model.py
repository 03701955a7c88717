"""save_torch_model / load_torch_model: a local copy that rebuilds and checks its hash."""

from __future__ import annotations

import json

import numpy as np
import pytest
from model_helpers import MLP_CONFIG, assert_same_outputs, make_mlp

from agentnn.errors import ModelError, ModelIntegrityError, UntrustedBuilderError
from agentnn.managers.builders import MLP_BUILDER
from agentnn.mlflow_integration.models.format import (
    FORMAT_VERSION,
    SPEC_FILE,
    WEIGHTS_FILE,
    file_sha256,
    load_torch_model,
    save_torch_model,
)

INPUTS = np.linspace(0, 1, 12, dtype=np.float32).reshape(2, 6)


def test_saved_folder_reloads_to_identical_outputs_in_eval_mode(tmp_path):
    module = make_mlp(seed=3)
    folder = save_torch_model(module, tmp_path / "m", builder=MLP_BUILDER, config=MLP_CONFIG,
                              metadata={"agents": ["a", "b", "c"]})
    spec = json.loads((folder / SPEC_FILE).read_text())
    assert spec["format_version"] == FORMAT_VERSION and spec["builder"] == MLP_BUILDER
    assert spec["config"] == MLP_CONFIG and spec["metadata"] == {"agents": ["a", "b", "c"]}
    assert spec["sha256"] == file_sha256(folder / WEIGHTS_FILE)
    reloaded = load_torch_model(folder)
    assert not reloaded.training
    assert_same_outputs(reloaded, module, INPUTS)


def test_changed_weights_fail_the_sha256_check(tmp_path):
    folder = save_torch_model(make_mlp(), tmp_path / "m", builder=MLP_BUILDER, config=MLP_CONFIG)
    other = save_torch_model(make_mlp(seed=9), tmp_path / "o", builder=MLP_BUILDER,
                             config=MLP_CONFIG)
    (folder / WEIGHTS_FILE).write_bytes((other / WEIGHTS_FILE).read_bytes())  # valid, but swapped
    with pytest.raises(ModelIntegrityError, match="changed after it was logged"):
        load_torch_model(folder)


@pytest.mark.parametrize("builder", ["os:system", "builtins:eval", "agentnn_evil.x:build",
                                     "agentnn.managers.builders"])
def test_a_spec_naming_a_builder_outside_agentnn_is_refused(tmp_path, builder):
    folder = save_torch_model(make_mlp(), tmp_path / "m", builder=MLP_BUILDER, config=MLP_CONFIG)
    spec = json.loads((folder / SPEC_FILE).read_text())
    (folder / SPEC_FILE).write_text(json.dumps({**spec, "builder": builder}))
    with pytest.raises(UntrustedBuilderError, match="refused"):
        load_torch_model(folder)


def test_a_folder_without_a_spec_is_named_in_the_error(tmp_path):
    with pytest.raises(ModelError, match="no spec.json"):
        load_torch_model(tmp_path)


def test_a_spec_from_a_newer_format_asks_for_an_upgrade(tmp_path):
    folder = save_torch_model(make_mlp(), tmp_path / "m", builder=MLP_BUILDER, config=MLP_CONFIG)
    spec = json.loads((folder / SPEC_FILE).read_text())
    (folder / SPEC_FILE).write_text(json.dumps({**spec, "format_version": 99}))
    with pytest.raises(ModelError, match="upgrade agentnn"):
        load_torch_model(folder)
