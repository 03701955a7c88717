"""Helpers for the model tests: a small real MLP, logging it, and comparing outputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_FEATURES = 6
MLP_CONFIG = {"n_features": N_FEATURES, "hidden": [8], "heads": {"agent_logits": 3, "success": 1}}


@dataclass
class LoggedFixture:
    """A model logged once, and everything a test needs to reload and compare it."""

    module: object
    info: object
    inputs: np.ndarray
    tracking_uri: str


def expected_outputs(module, inputs: np.ndarray) -> dict[str, np.ndarray]:
    import torch

    module.eval()
    with torch.no_grad():
        output = module(torch.from_numpy(inputs))
    return {key: value.numpy() for key, value in output.items()}


def assert_same_outputs(module, reference, inputs: np.ndarray) -> None:
    got, want = expected_outputs(module, inputs), expected_outputs(reference, inputs)
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key])


def make_mlp(seed: int = 0):
    import torch

    from agentnn.managers.builders import build_mlp

    torch.manual_seed(seed)
    return build_mlp(MLP_CONFIG)


def log_mlp(tracking_uri: str, *, seed: int = 0, register_as: str | None = None,
            name: str = "model") -> LoggedFixture:
    """Train nothing, just log a seeded MLP inside a tracked run and return where it went."""
    from agentnn.managers.builders import MLP_BUILDER
    from agentnn.mlflow_integration import ExperimentTracker
    from agentnn.mlflow_integration.models.format import log_torch_model

    module = make_mlp(seed)
    inputs = np.random.default_rng(seed).random((4, N_FEATURES), dtype=np.float32)
    with ExperimentTracker("model_tests", tracking_uri=tracking_uri).start_run():
        info = log_torch_model(module, builder=MLP_BUILDER, config=MLP_CONFIG, name=name,
                               input_example=inputs, register_as=register_as,
                               metadata={"agents": ["finance", "legal", "tech"]})
    return LoggedFixture(module=module, info=info, inputs=inputs, tracking_uri=tracking_uri)
