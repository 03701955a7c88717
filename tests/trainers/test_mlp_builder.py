"""The one MLP builder: its layer layout, its activations and its refusals."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agentnn.errors import TrainerConfigError
from agentnn.nn_models.training.mlp import ACTIVATIONS, mlp


def test_each_hidden_width_is_linear_activation_dropout_then_the_head() -> None:
    net = mlp(4, [8, 6], 3, activation="relu", dropout=0.2)

    assert [type(layer).__name__ for layer in net] == [
        "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert {key: tuple(value.shape) for key, value in net.state_dict().items()} == {
        "0.weight": (8, 4), "0.bias": (8,), "3.weight": (6, 8), "3.bias": (6,),
        "6.weight": (3, 6), "6.bias": (3,)}
    assert net[2].p == 0.2


def test_no_dropout_leaves_the_module_out_so_linears_sit_at_even_indices() -> None:
    net = mlp(4, [8, 6], 3, activation="gelu")

    assert [type(layer).__name__ for layer in net] == ["Linear", "GELU", "Linear", "GELU", "Linear"]
    assert sorted(net.state_dict()) == ["0.bias", "0.weight", "2.bias", "2.weight",
                                        "4.bias", "4.weight"]


def test_without_outputs_it_ends_after_the_last_hidden_block() -> None:
    net = mlp(4, [8], dropout=0.0)

    assert [type(layer).__name__ for layer in net] == ["Linear", "ReLU", "Dropout"]


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_listed_activation_builds(activation: str) -> None:
    net = mlp(2, [3], 1, activation=activation)

    assert type(net[1]).__name__ == ACTIVATIONS[activation]


def test_an_unknown_activation_is_refused_by_name() -> None:
    with pytest.raises(TrainerConfigError, match="'swish'"):
        mlp(4, [8], 2, activation="swish")


@pytest.mark.parametrize("hidden", [[0], [-3], [2.5], ["8"]])
def test_a_width_that_is_not_a_positive_integer_is_refused(hidden: list[object]) -> None:
    with pytest.raises(TrainerConfigError, match="MLP widths must be positive integers"):
        mlp(4, hidden, 2)  # type: ignore[arg-type]


def test_importing_the_builder_does_not_import_torch() -> None:
    code = "import sys, agentnn.nn_models.training.mlp; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120)

    assert result.stdout.strip() == "False"
