"""A plain multi-layer perceptron that the safe model format can rebuild from JSON.

Why it exists: a model in the safe format names a registered builder (see
``agentnn.mlflow_integration.models.builders``). Baselines, routing heads and small experiments
need no bespoke architecture, so this one builder, registered as ``"mlp"``, lets them be logged
and loaded like the trainers' models::

    net = build_mlp({"n_features": 16, "hidden": [32], "heads": {"agent_logits": 4}})
    log_torch_model(net, builder=MLP_BUILDER, config=config, input_example=x[:4])
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from agentnn.errors import TrainerConfigError
from agentnn.mlflow_integration.models.builders import register_builder
from agentnn.nn_models.training.configs import JSONValue
from agentnn.nn_models.training.mlp import ACTIVATIONS, check_activation, mlp

MLP_BUILDER = "mlp"  # registry name; earlier models say "agentnn.managers.builders:build_mlp"
MLP_KEYS = ("n_features", "hidden", "n_outputs", "heads", "activation")  # what build_mlp reads
__all__ = ["ACTIVATIONS", "MLP", "MLP_BUILDER", "MLP_KEYS", "build_mlp"]


class MLP(torch.nn.Module):
    """Shared hidden layers, then one linear head per output."""

    def __init__(self, body: torch.nn.Module, heads: dict[str, int], width: int) -> None:
        super().__init__()
        self.body = body
        self.single = list(heads) == [""]
        self.heads = torch.nn.ModuleDict(
            {(name or "out"): torch.nn.Linear(width, size) for name, size in heads.items()}
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        hidden = self.body(features)
        if self.single:
            logits: torch.Tensor = self.heads["out"](hidden)
            return logits
        return {name: head(hidden) for name, head in self.heads.items()}


@register_builder(MLP_BUILDER, keys=MLP_KEYS)
def build_mlp(config: Mapping[str, JSONValue]) -> MLP:
    """An MLP from ``{"n_features", "hidden": [...], "n_outputs" | "heads", "activation"}``.

    With ``n_outputs`` the forward pass returns one tensor; with ``heads`` (name → width) it
    returns a dict of tensors, one per head, computed from the same hidden layers.
    """
    n_features = int(config.get("n_features", 0))
    hidden = [int(width) for width in config.get("hidden", [])]
    activation = str(config.get("activation", "relu"))
    heads = {str(name): int(width) for name, width in (config.get("heads") or {}).items()}
    if n_features <= 0 or any(width <= 0 for width in hidden):
        raise TrainerConfigError(
            f"MLP needs a positive n_features and hidden widths, got {n_features} and {hidden}"
        )
    check_activation(activation)
    if not heads:
        heads = {"": int(config.get("n_outputs", 0))}
    if any(width <= 0 for width in heads.values()):
        raise TrainerConfigError(f"MLP outputs must have a positive width, got {heads}")

    body = mlp(n_features, hidden, activation=activation)  # no Dropout: "body.0", "body.2"...
    return MLP(body, heads, hidden[-1] if hidden else n_features)
