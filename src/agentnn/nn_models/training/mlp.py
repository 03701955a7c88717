"""The one multi-layer-perceptron builder every trainer's network is made from.

Per hidden width it appends ``Linear, activation, Dropout`` to a ``torch.nn.Sequential``, then an
optional ``Linear`` head. The position of each module is part of every saved model: weights are
stored under state-dict keys such as ``0.weight`` and ``3.weight`` and matched by key and shape on
load, so ``dropout=None`` leaves the Dropout module out (a model without dropout has Linears at
0, 2, 4, ...) instead of adding a ``Dropout(0)`` that would shift every index after it.
``tests/trainers/test_saved_model_layouts.py`` pins the layouts logged models use.

torch is imported inside :func:`mlp`, so importing this module stays cheap (``agentnn --help``
never imports torch).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, SupportsIndex

from agentnn.errors import TrainerConfigError

if TYPE_CHECKING:
    import torch

# activation name (as configs and saved specs spell it) -> class name in torch.nn
ACTIVATIONS: dict[str, str] = {"relu": "ReLU", "gelu": "GELU", "tanh": "Tanh", "silu": "SiLU"}


def check_activation(activation: str) -> None:
    """Refuse an activation name :func:`mlp` does not know, naming the choices."""
    if activation not in ACTIVATIONS:
        raise TrainerConfigError(
            f"MLP activation must be one of {', '.join(sorted(ACTIVATIONS))}, got {activation!r}"
        )


def _is_width(value: object) -> bool:
    """A positive integer (numpy integers too; floats and bools are not widths)."""
    if isinstance(value, bool) or not isinstance(value, SupportsIndex):
        return False
    try:
        return operator.index(value) > 0
    except TypeError:
        return False


def mlp(
    n_inputs: int,
    hidden: Sequence[int],
    n_outputs: int | None = None,
    *,
    activation: str = "relu",
    dropout: float | None = None,
) -> torch.nn.Sequential:
    """``[Linear, activation, Dropout] * len(hidden)``, then ``Linear(last, n_outputs)``.

    Args:
        n_inputs: width of the input features.
        hidden: one width per hidden layer; empty gives just the head.
        n_outputs: width of the final Linear; ``None`` ends after the last hidden block.
        activation: a key of :data:`ACTIVATIONS`.
        dropout: probability of each hidden block's Dropout; ``None`` adds no Dropout module.

    Raises:
        TrainerConfigError: a width is not positive or the activation is unknown.
    """
    from torch import nn

    check_activation(activation)
    widths = [n_inputs, *hidden, *([] if n_outputs is None else [n_outputs])]
    if not all(_is_width(width) for width in widths):
        raise TrainerConfigError(
            f"MLP widths must be positive integers, got inputs {n_inputs}, hidden "
            f"{list(hidden)}, outputs {n_outputs}"
        )
    make_activation = getattr(nn, ACTIVATIONS[activation])
    layers: list[nn.Module] = []
    width_in = n_inputs
    for width in hidden:
        layers += [nn.Linear(width_in, width), make_activation()]
        if dropout is not None:
            layers.append(nn.Dropout(dropout))
        width_in = width
    if n_outputs is not None:
        layers.append(nn.Linear(width_in, n_outputs))
    return nn.Sequential(*layers)
