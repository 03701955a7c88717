"""The architecture search's config: the search space and how each trial trains.

Every field is logged as a param on the parent run; renamed keys still work, with a warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from agentnn.errors import AgentNNDeprecationWarning, TrainerConfigError
from agentnn.nn_models.training.configs import (
    JSONDict,
    check_choice,
    check_positive,
    check_range,
)
from agentnn.nn_models.training.devices import (
    DEFAULT_DEVICE,
    check_device,
)
from agentnn.nn_models.training.mlp import ACTIVATIONS

if TYPE_CHECKING:

    pass


ACTIVATION_NAMES = tuple(ACTIVATIONS)


@dataclass
class ArchitectureSearchConfig:
    """The search space and how each trial trains; every field is logged as a param."""

    RENAMED: ClassVar[dict[str, str]] = {"n_candidates": "n_trials",
                                         "checkpoint_root": "checkpoint_dir"}
    """Old key -> new key; the old keys still work, with a DeprecationWarning."""

    # --- budget ---------------------------------------------------------------------------
    n_trials: int = 6  # trials this command runs (shared by its workers); the study keeps more
    # --- search space ---------------------------------------------------------------------
    depths: list[int] = field(default_factory=lambda: [1, 2, 3])
    widths: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    """Choices for each hidden layer's width; layers draw independently."""
    dropouts: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.3])
    activations: list[str] = field(default_factory=lambda: ["relu", "gelu", "tanh"])
    learning_rates: list[float] = field(default_factory=lambda: [1e-3, 1e-2])
    """[low, high] of the learning rate, sampled on a log scale (equal values: fixed)."""
    sampler_startup_trials: int = 5  # random trials before TPE models the space
    # --- training of one trial ------------------------------------------------------------
    epochs: int = 8  # per trial
    batch_size: int = 64
    weight_decay: float = 0.01
    train_accuracy: bool = False
    """Log each trial's ``train_acc`` too. Off by default: the search ranks and prunes on
    ``val_loss`` and reshapes on ``train_loss``, and on small candidates the accuracy's tensor
    operations cost about 6% of every step."""
    # --- pruning: stop hopeless trials on their per-epoch val_loss ------------------------
    pruner: str = "median"  # median or none
    prune_startup_trials: int = 2  # trials that finish before any is pruned
    prune_warmup_epochs: int = 2  # epochs of each trial before it may be pruned
    # --- reshaping when validation stalls -------------------------------------------------
    stall_patience: int = 2  # epochs without a lower val_loss before the network is reshaped
    min_delta: float = 1e-3  # a smaller val_loss improvement counts as a stall
    overfit_ratio: float = 1.5  # val_loss / train_loss above this: shrink; otherwise grow
    grow_factor: float = 2.0  # widths multiply by this when growing (capped at max_width)
    shrink_factor: float = 0.5  # ... and by this when shrinking (floored at min_width)
    min_width: int = 8
    max_width: int = 256
    max_reshapes: int = 2  # per trial; 0 disables reshaping
    # --- reproducibility and hardware -----------------------------------------------------
    seed: int = 0
    device: str = DEFAULT_DEVICE  # auto, cpu, cuda or mps
    amp: bool = False  # float16 mixed precision, on CUDA only
    checkpoint_dir: str | None = None
    """Unused: the study's storage holds the search's state (kept for old config files)."""

    def validate(self) -> None:
        check_positive("n_trials", self.n_trials)
        check_int_list("depths", self.depths)
        check_int_list("widths", self.widths)
        if not self.dropouts:
            raise TrainerConfigError("dropouts must list at least one value")
        for value in self.dropouts:
            check_range("dropouts", value, 0.0, 0.9)
        if not self.activations:
            raise TrainerConfigError("activations must list at least one value")
        for name in self.activations:
            check_choice("activations", name, ACTIVATION_NAMES)
        if (not isinstance(self.learning_rates, list) or len(self.learning_rates) != 2
                or not all(isinstance(v, (int, float)) and v > 0 for v in self.learning_rates)
                or self.learning_rates[0] > self.learning_rates[1]):
            raise TrainerConfigError(f"learning_rates must be [low, high] with 0 < low <= high, "
                                     f"got {self.learning_rates!r}")
        for name in ("epochs", "batch_size", "min_width", "max_width"):
            check_positive(name, getattr(self, name))
        check_choice("pruner", self.pruner, ("median", "none"))
        check_positive("sampler_startup_trials", self.sampler_startup_trials, allow_zero=True)
        check_positive("prune_startup_trials", self.prune_startup_trials, allow_zero=True)
        check_positive("prune_warmup_epochs", self.prune_warmup_epochs, allow_zero=True)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_positive("stall_patience", self.stall_patience)
        check_positive("min_delta", self.min_delta, allow_zero=True)
        check_positive("max_reshapes", self.max_reshapes, allow_zero=True)
        check_range("overfit_ratio", self.overfit_ratio, 1.0, math.inf)
        check_range("grow_factor", self.grow_factor, 1.0, 16.0)
        check_range("shrink_factor", self.shrink_factor, 0.05, 1.0)
        check_device(self.device)
        if self.min_width > self.max_width:
            raise TrainerConfigError(
                f"min_width ({self.min_width}) must not exceed max_width ({self.max_width})"
            )

    @classmethod
    def legacy(cls, values: JSONDict) -> JSONDict:
        """Old keys whose meaning changed: ``lr`` (one rate) becomes ``learning_rates``."""
        if "lr" in values and "learning_rates" not in values:
            rate = values.pop("lr")
            values["learning_rates"] = [rate, rate]
            warn_renamed("lr", "learning_rates", f"[{rate}, {rate}]")
        return values


def warn_renamed(old: str, new: str, value: str = "") -> None:
    import warnings

    from agentnn.nn_models.training.configs import REMOVED_IN

    hint = f" = {value}" if value else ""
    warnings.warn(f"config key {old!r} is deprecated and removed in {REMOVED_IN}; "
                  f"use {new!r}{hint}", AgentNNDeprecationWarning, stacklevel=4)


def check_int_list(name: str, values: list[int]) -> None:
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in values):
        raise TrainerConfigError(f"{name} must be a non-empty list of positive integers, "
                                 f"got {values!r}")

