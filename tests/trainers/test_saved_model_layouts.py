"""Models saved by earlier versions still load and give the same outputs.

The folders under ``tests/fixtures/models_v1/`` were written once by each builder before the MLP
builder was unified (see ``make_fixtures.py`` there). Weights are matched by state-dict key and
shape, so a builder that renames or reorders a layer breaks every model logged before; these
tests catch that.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models_v1"
CASES = (
    "advanced_training_classifier",
    "advanced_training_multimodal",
    "multi_task_learning_linear_heads",
    "multi_task_learning_hidden_heads",
    "online_learning",
    "training_infrastructure",
    "dynamic_architecture",
    "mlp_single_output",
    "mlp_heads",
)


def _expected(case: str) -> dict[str, object]:
    return json.loads((FIXTURES / case / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", CASES)
def test_saved_model_loads_with_the_same_layout(case: str) -> None:
    from agentnn.mlflow_integration.models.format import load_torch_model

    module = load_torch_model(FIXTURES / case)

    layout = {key: list(value.shape) for key, value in module.state_dict().items()}
    assert layout == _expected(case)["layout"]


@pytest.mark.parametrize("case", CASES)
def test_saved_model_gives_the_recorded_outputs(case: str) -> None:
    import torch

    from agentnn.mlflow_integration.models.format import load_torch_model

    expected = _expected(case)
    module = load_torch_model(FIXTURES / case)
    with torch.no_grad():
        output = module(torch.tensor(expected["input"], dtype=torch.float32))

    outputs = output if isinstance(output, dict) else {"": output}
    assert sorted(outputs) == sorted(expected["output"])
    for key, want in expected["output"].items():
        np.testing.assert_allclose(outputs[key].numpy(), np.asarray(want, dtype=np.float32),
                                   rtol=1e-5, atol=1e-6, err_msg=f"{case}: output {key!r}")


def test_every_fixture_folder_is_tested() -> None:
    folders = {path.name for path in FIXTURES.iterdir() if path.is_dir()}
    folders.discard("__pycache__")
    assert folders == set(CASES)
