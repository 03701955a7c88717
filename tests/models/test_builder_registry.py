"""The registry of builders: registered names load, legacy dotted names still load, anything
else is refused without being imported, and an installed package adds builders through the
``agentnn.builders`` entry-point group."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from pathlib import Path

import pytest
from model_helpers import MLP_CONFIG, assert_same_outputs, make_mlp

from agentnn.errors import ModelError, UntrustedBuilderError
from agentnn.managers.builders import MLP_BUILDER
from agentnn.mlflow_integration.models import builders as builder_registry
from agentnn.mlflow_integration.models.builders import (
    AGENTNN_BUILDERS,
    LEGACY_BUILDERS,
    get_builder,
    register_builder,
    registered_builders,
)
from agentnn.mlflow_integration.models.format import SPEC_FILE, load_torch_model, save_torch_model

PLUGIN_SOURCE = '''
"""A user's package with its own builder, registered through the agentnn.builders group."""
import torch

from agentnn.mlflow_integration.models.builders import register_builder


@register_builder("tiny-plugin-net", keys=("n_in", "n_out"))
def build_tiny(config):
    return torch.nn.Linear(int(config["n_in"]), int(config["n_out"]))
'''


def _rewrite_spec(folder: Path, **changes) -> None:
    spec = json.loads((folder / SPEC_FILE).read_text())
    (folder / SPEC_FILE).write_text(json.dumps({**spec, **changes}))


def test_a_saved_model_names_its_registry_entry_and_loads(tmp_path):
    module = make_mlp()
    folder = save_torch_model(module, tmp_path / "m", builder=MLP_BUILDER, config=MLP_CONFIG)
    assert json.loads((folder / SPEC_FILE).read_text())["builder"] == "mlp"
    assert_same_outputs(load_torch_model(folder), module, __import__("numpy").ones((2, 6),
                                                                                    "float32"))


def test_a_model_logged_before_the_registry_still_loads(tmp_path):
    module = make_mlp()
    folder = save_torch_model(module, tmp_path / "m", builder=MLP_BUILDER, config=MLP_CONFIG)
    _rewrite_spec(folder, builder="agentnn.managers.builders:build_mlp")
    assert_same_outputs(load_torch_model(folder), module, __import__("numpy").ones((2, 6),
                                                                                    "float32"))


def test_saving_with_a_legacy_dotted_name_stores_the_registry_name(tmp_path):
    folder = save_torch_model(make_mlp(), tmp_path / "m",
                              builder="agentnn.managers.builders:build_mlp", config=MLP_CONFIG)
    assert json.loads((folder / SPEC_FILE).read_text())["builder"] == "mlp"


@pytest.mark.parametrize("legacy", sorted(LEGACY_BUILDERS))
def test_every_legacy_name_maps_to_a_registered_callable(legacy):
    builder = get_builder(legacy)
    assert builder.name == LEGACY_BUILDERS[legacy] and callable(builder.function)
    assert builder.keys


def test_agentnn_s_own_builders_are_all_listed():
    names = set(registered_builders())
    assert {"mlp", *AGENTNN_BUILDERS} <= names


def test_a_trainer_builder_rebuilds_from_its_registry_name(tmp_path):
    import torch

    from agentnn.nn_models.online_learning import build_model

    config = {"n_features": 5, "n_agents": 3, "hidden_sizes": [7], "dropout": 0.0}
    module = build_model(config)
    folder = save_torch_model(module, tmp_path / "m", builder="online_learning", config=config)
    loaded = load_torch_model(folder)
    inputs = torch.ones(2, 5)
    assert torch.equal(loaded(inputs), module.eval()(inputs))


def test_a_config_key_the_builder_did_not_declare_is_refused(tmp_path):
    folder = save_torch_model(make_mlp(), tmp_path / "m", builder=MLP_BUILDER, config=MLP_CONFIG)
    _rewrite_spec(folder, config={**MLP_CONFIG, "__class__": "os.system"})
    with pytest.raises(UntrustedBuilderError, match="'__class__' are not among the keys"):
        load_torch_model(folder)


@pytest.mark.parametrize("builder", ["agentnn.cli.main:main", "os.system", "subprocess:run",
                                     "tiny-plugin-net-missing", "a" * 300, ""])
def test_an_unregistered_name_is_refused_and_never_imported(tmp_path, builder):
    folder = save_torch_model(make_mlp(), tmp_path / "m", builder=MLP_BUILDER, config=MLP_CONFIG)
    _rewrite_spec(folder, builder=builder)
    before = set(sys.modules)
    with pytest.raises(UntrustedBuilderError, match="refused"):
        load_torch_model(folder)
    assert not {"agentnn.cli.main", "subprocess"} & (set(sys.modules) - before)


def test_a_taken_name_cannot_be_registered_by_another_function():
    with pytest.raises(ModelError, match="already registered"):
        register_builder("mlp", keys=("n_features",))(lambda config: None)


def test_a_malformed_builder_name_cannot_be_registered():
    with pytest.raises(ModelError, match="builder name"):
        register_builder("has space", keys=())


@pytest.fixture
def plugin_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real installed package: its module and a dist-info with entry_points.txt on sys.path."""
    site = tmp_path / "site"
    (site / "tiny_agentnn_plugin").mkdir(parents=True)
    (site / "tiny_agentnn_plugin" / "__init__.py").write_text(PLUGIN_SOURCE)
    info = site / "tiny_agentnn_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-agentnn-plugin\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [agentnn.builders]
        tiny-plugin-net = tiny_agentnn_plugin:build_tiny
    """))
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield site
    sys.modules.pop("tiny_agentnn_plugin", None)
    builder_registry._REGISTRY.pop("tiny-plugin-net", None)


def test_a_package_s_entry_point_builder_loads_its_models(plugin_package, tmp_path):
    import torch

    torch.manual_seed(0)
    module = torch.nn.Linear(3, 2)
    spec = {"format_version": 1, "builder": "tiny-plugin-net", "config": {"n_in": 3, "n_out": 2}}
    folder = tmp_path / "m"
    folder.mkdir()
    from safetensors.torch import save_model

    from agentnn.mlflow_integration.models.format import WEIGHTS_FILE, file_sha256

    save_model(module, str(folder / WEIGHTS_FILE))
    spec["sha256"] = file_sha256(folder / WEIGHTS_FILE)
    (folder / SPEC_FILE).write_text(json.dumps(spec))
    assert "tiny_agentnn_plugin" not in sys.modules  # nothing imported it yet
    loaded = load_torch_model(folder)
    assert "tiny_agentnn_plugin" in sys.modules
    assert torch.equal(loaded(torch.ones(1, 3)), module(torch.ones(1, 3)))
    assert registered_builders()["tiny-plugin-net"].origin == "tiny_agentnn_plugin"


def test_an_entry_point_that_registers_nothing_is_named(plugin_package, tmp_path):
    (plugin_package / "tiny_agentnn_plugin" / "__init__.py").write_text(
        "def build_tiny(config):\n    return None\n"
    )
    with pytest.raises(ModelError, match="did not register.*@register_builder"):
        get_builder("tiny-plugin-net")


def test_a_trainer_decorating_a_listed_builder_takes_its_place():
    listed = get_builder("online_learning")
    assert listed.listed

    def build_router(config):
        return listed.function(config)

    try:
        register_builder("online_learning", keys=listed.keys)(build_router)
        assert get_builder("online_learning").function is build_router
    finally:
        builder_registry._REGISTRY["online_learning"] = listed
