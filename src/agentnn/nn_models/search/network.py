"""The searched network, built from its JSON spec, and its surgery while it trains.

A trial grows (wider hidden layers) when it underfits and shrinks (drops its weakest units)
when it overfits, keeping what it learned and its optimiser state; ``build_model`` is also the
builder that loads a logged search model back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from agentnn.nn_models.search.config import ArchitectureSearchConfig
from agentnn.nn_models.training.configs import (
    JSONDict,
)
from agentnn.nn_models.training.mlp import ACTIVATIONS, mlp

if TYPE_CHECKING:
    import torch



# --- the network and its reshaping -------------------------------------------------------------


SEQUENTIAL_LAYOUT = "sequential"  # the spec's "layout" for networks from nn_models.mlp


def build_model(config: JSONDict) -> torch.nn.Module:
    """The search's network from its JSON spec (what the logged model stores).

    A spec with ``layout: "sequential"`` is built by the one MLP builder
    (:func:`agentnn.nn_models.training.mlp.mlp`); a spec without it is a model logged before, whose
    weights name their layers ``hidden.<i>`` and ``head``, and is built with that layout.
    """
    n_features, n_classes = int(config["n_features"]), int(config["n_classes"])
    hidden = [int(width) for width in config["hidden_sizes"]]
    activation, dropout = str(config["activation"]), float(config["dropout"])
    if config.get("layout") == SEQUENTIAL_LAYOUT:
        return mlp(n_features, hidden, n_classes, activation=activation, dropout=dropout)
    return _legacy_mlp_class()(n_features, hidden, n_classes, activation, dropout)


def _legacy_mlp_class() -> type[torch.nn.Module]:
    """The layout of search models logged before the one MLP builder: only to load them."""
    global _LEGACY_MLP
    if _LEGACY_MLP is None:
        from torch import nn

        class MorphableMLP(nn.Module):
            def __init__(self, n_features: int, hidden_sizes: list[int], n_classes: int,
                         activation: str = "relu", dropout: float = 0.0) -> None:
                super().__init__()
                sizes = [n_features, *hidden_sizes]
                self.hidden = nn.ModuleList(
                    nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])
                )
                self.head = nn.Linear(sizes[-1], n_classes)
                self.act = getattr(nn, ACTIVATIONS[activation])()
                self.drop = nn.Dropout(dropout)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                for layer in self.hidden:
                    x = self.drop(self.act(layer(x)))
                logits: torch.Tensor = self.head(x)
                return logits

        _LEGACY_MLP = MorphableMLP
    return _LEGACY_MLP


_LEGACY_MLP: type[torch.nn.Module] | None = None


def _linears(model: torch.nn.Module) -> list[tuple[str, torch.nn.Linear]]:
    """The network's Linear layers by state-dict name, input to head (either layout)."""
    from torch import nn

    return [(name, module) for name, module in model.named_modules()
            if isinstance(module, nn.Linear)]


def _unit_importance(model: torch.nn.Module, layer_index: int) -> torch.Tensor:
    """How much a hidden unit matters: the norm of its incoming times its outgoing weights."""
    layers = [layer for _, layer in _linears(model)]
    incoming = layers[layer_index].weight.detach().norm(dim=1)
    outgoing = layers[layer_index + 1].weight.detach().norm(dim=0)
    importance: torch.Tensor = incoming * outgoing
    return importance


def _kept_units(model: torch.nn.Module, new_sizes: list[int]) -> list[torch.Tensor]:
    """Per hidden layer, the units that survive: all when growing, the strongest when shrinking."""
    import torch

    kept = []
    widths = [layer.out_features for _, layer in _linears(model)[:-1]]
    for index, (old, new) in enumerate(zip(widths, new_sizes)):
        if new >= old:
            kept.append(torch.arange(old))
        else:
            kept.append(torch.topk(_unit_importance(model, index), new).indices.sort().values)
    return kept


def _resize(tensor: torch.Tensor, dim: int, keep: torch.Tensor, size: int,
            init_scale: float | None, generator: torch.Generator) -> torch.Tensor:
    """``keep`` entries of ``dim`` first, padded to ``size`` with zeros or uniform noise."""
    import torch

    shape = list(tensor.shape)
    shape[dim] = size
    if init_scale is None:
        out = torch.zeros(shape, dtype=tensor.dtype)
    else:
        out = (torch.rand(shape, generator=generator, dtype=tensor.dtype) * 2 - 1) * init_scale
    out.index_copy_(dim, torch.arange(len(keep)), tensor.index_select(dim, keep))
    return out


def _reshape_plan(model: torch.nn.Module,
                  new_sizes: list[int]) -> dict[str, list[tuple[int, torch.Tensor, int]]]:
    """Per parameter name, the (dim, kept units, new size) resizes to apply, in order."""
    kept = _kept_units(model, new_sizes)
    names = [name for name, _ in _linears(model)]
    plan: dict[str, list[tuple[int, torch.Tensor, int]]] = {}
    for index, name in enumerate(names):
        incoming = (1, kept[index - 1], new_sizes[index - 1]) if index > 0 else None
        outgoing = (0, kept[index], new_sizes[index]) if index < len(new_sizes) else None
        plan[f"{name}.weight"] = [step for step in (incoming, outgoing) if step is not None]
        plan[f"{name}.bias"] = [outgoing] if outgoing is not None else []
    return plan


def reshape(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, new_sizes: list[int],
    spec: JSONDict, make_optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer],
    generator: torch.Generator,
) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """The network with hidden widths ``new_sizes``, and its optimiser with state carried over.

    Growing preserves the function exactly: new units get random incoming weights and zero
    outgoing weights. Shrinking keeps the most important units. The optimiser's moment
    estimates are sliced or zero-padded the same way, so the candidate keeps its own state.
    """
    plan = _reshape_plan(model, new_sizes)
    names = [name for name, _ in model.named_parameters()]
    new_weights = {}
    for name, param in model.named_parameters():
        tensor = param.detach().cpu()
        for dim, keep, size in plan[name]:
            grows_rows = dim == 0 and name.endswith("weight")
            scale = 1 / math.sqrt(tensor.shape[1]) if grows_rows else None
            tensor = _resize(tensor, dim, keep, size, scale, generator)
        new_weights[name] = tensor
    device = next(model.parameters()).device
    new_model = build_model({**spec, "hidden_sizes": list(new_sizes)})
    new_model.load_state_dict(new_weights)
    new_model.to(device)
    state = optimizer.state_dict()
    # state_dict() shares the per-parameter dicts with the live optimiser: copy before editing
    state["state"] = {index: dict(entry) for index, entry in state["state"].items()}
    for index, name in enumerate(names):
        for key, value in state["state"].get(index, {}).items():
            if hasattr(value, "dim") and value.dim() > 0:
                for dim, keep, size in plan[name]:
                    value = _resize(value.cpu(), dim, keep, size, None, generator)
                state["state"][index][key] = value
    new_optimizer = make_optimizer(new_model)
    new_optimizer.load_state_dict(state)
    return new_model, new_optimizer


def next_widths(widths: list[int], train_loss: float, val_loss: float,
                config: ArchitectureSearchConfig) -> tuple[str, list[int]]:
    """Grow when the candidate underfits, shrink when it overfits; ("", widths) when capped."""
    overfits = val_loss > config.overfit_ratio * max(train_loss, 1e-12)
    factor = config.shrink_factor if overfits else config.grow_factor
    new = [min(config.max_width, max(config.min_width, int(round(width * factor))))
           for width in widths]
    if new == widths:
        return "", widths
    return ("shrink" if overfits else "grow"), new
