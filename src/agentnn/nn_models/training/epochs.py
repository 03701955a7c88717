"""Seeding, batch order, epoch timing, early stopping and learning-rate schedules.

Why together: these decide what one epoch sees and when training stops; each is a plain
function or a small state object that rides in a checkpoint.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from agentnn.nn_models.training.configs import check_choice

if TYPE_CHECKING:
    import torch
    from torch.optim.lr_scheduler import LRScheduler

SCHEDULERS = ("constant", "cosine", "step", "plateau")

EpochCallback = Callable[[int, dict[str, float]], None]
"""``on_epoch(epoch, metrics)``: called after each epoch (1-based) with that epoch's metrics."""

StopperState: TypeAlias = dict[str, int | float | str | None]
""":class:`EarlyStopping`'s fields as plain values, as a checkpoint stores them."""


# --- seeding -----------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch.

    Why: the trainers promise the same metrics for the same seed and data on CPU (CPU kernels
    are deterministic for a given thread count). Log the seed as a param (it is a config
    field, so ``flatten_config`` already does).
    """
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def batch_order(n_samples: int, *, seed: int, epoch: int,
                shuffle: bool = True) -> torch.Tensor:
    """The sample order of one epoch, a function of (seed, epoch) only.

    Why not the global RNG: a resumed run must see the same batches as an uninterrupted one,
    so the order may not depend on how many random numbers earlier epochs drew.
    """
    import torch

    if not shuffle:
        return torch.arange(n_samples)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n_samples, generator=generator)


# --- timing, early stopping, learning rates ----------------------------------------------------


class EpochTimer:
    """Measures one epoch: ``with EpochTimer(n) as timer: ...; timer.metrics()``."""

    def __init__(self, n_samples: int) -> None:
        self.n_samples = n_samples
        self.seconds = 0.0
        self._start = 0.0

    def __enter__(self) -> EpochTimer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = time.perf_counter() - self._start

    def metrics(self) -> dict[str, float]:
        """``epoch_time_s`` and ``samples_per_s`` of the timed block."""
        seconds = max(self.seconds, 1e-9)
        return {"epoch_time_s": self.seconds, "samples_per_s": self.n_samples / seconds}


@dataclass
class EarlyStopping:
    """Stops training when the watched metric has not improved for ``patience`` epochs.

    ``patience=0`` never stops. The state is plain numbers, so it rides in a checkpoint.
    """

    patience: int = 5
    """Epochs without improvement before stopping; 0 disables early stopping."""
    min_delta: float = 0.0
    """An improvement smaller than this does not count."""
    mode: str = "min"
    """``min`` for losses, ``max`` for accuracies."""
    best: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0

    def update(self, value: float, epoch: int) -> bool:
        """Record this epoch's value; True when it is a new best (save the model then)."""
        improved = self.best is None or (
            value < self.best - self.min_delta if self.mode == "min"
            else value > self.best + self.min_delta
        )
        if improved:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
        else:
            self.bad_epochs += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience

    def state_dict(self) -> StopperState:
        return dataclasses.asdict(self)

    def load_state_dict(self, state: Mapping[str, int | float | str | None]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def make_scheduler(
    optimizer: torch.optim.Optimizer,
    kind: str,
    *,
    epochs: int,
    min_lr: float = 0.0,
    step_size: int = 10,
    gamma: float = 0.5,
    patience: int = 2,
) -> LRScheduler:
    """A torch LR scheduler stepped once per epoch; see :func:`step_scheduler`.

    ``constant`` keeps the LR; ``cosine`` anneals to ``min_lr`` over ``epochs``; ``step``
    multiplies by ``gamma`` every ``step_size`` epochs; ``plateau`` multiplies by ``gamma``
    after ``patience`` epochs without a lower validation loss.
    """
    import torch

    check_choice("scheduler", kind, SCHEDULERS)
    lr_scheduler = torch.optim.lr_scheduler
    if kind == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1), eta_min=min_lr)
    if kind == "step":
        return lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    if kind == "plateau":
        return lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=gamma, patience=patience, min_lr=min_lr
        )
    return lr_scheduler.LambdaLR(optimizer, lr_lambda=_constant_factor)


def _constant_factor(epoch: int) -> float:
    # Module-level (not a lambda) so the scheduler's state_dict stays picklable.
    return 1.0


def step_scheduler(scheduler: LRScheduler, val_loss: float) -> None:
    """Advance a scheduler by one epoch; ``plateau`` needs the validation loss."""
    import torch

    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(val_loss)
    else:
        scheduler.step()


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The learning rate of the first parameter group (what the ``lr`` metric logs)."""
    return float(optimizer.param_groups[0]["lr"])
