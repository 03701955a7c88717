"""Architecture search for the router on Optuna, experiment ``architecture_optimization``.

Why a search: the best depth, widths, dropout, activation and learning rate for a router depend
on the data (how many agents, how noisy the logs are), and guessing them wastes training runs.
This trainer runs an Optuna study: a TPE sampler proposes each trial's architecture, a median
pruner stops trials whose per-epoch validation loss is hopeless, and while a trial trains it is
reshaped when validation stalls: it grows (wider hidden layers) when it underfits and shrinks
(drops its weakest units) when it overfits, keeping what it learned and its optimiser state.

The study lives in an Optuna storage (a SQLite file beside the tracking store by default,
PostgreSQL for several machines), so a search spreads over processes and machines and resumes
after an interruption. MLflow sees one parent run per study (tag ``agentnn.study``) and one
nested child run per trial (tags ``agentnn.trial`` and ``agentnn.trial_state``: complete, pruned
or failed). The parent holds the leaderboard (``leaderboard.json``/``.csv``), the best
architecture (``best_architecture.json``) and the best trial's weights as a model in the safe
format, registered with ``register_as``.

Run example::

    from agentnn.data import load_dataset            # digits or an interaction log
    from agentnn.nn_models import dynamic_architecture as da

    config = da.ArchitectureSearchConfig(n_trials=8, epochs=6, seed=7)
    result = da.train(config, load_dataset("logs.jsonl"), workers=2, register_as="agent-router")
    print(result.run_id, result.best_metrics["val_acc"])

or ``agentnn train architecture --data logs.jsonl --trials 8 --workers 2``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypeAlias, TypedDict

from agentnn.errors import SearchFailedError, TrainerConfigError
from agentnn.nn_models import search_study
from agentnn.nn_models.common import (
    EarlyStopping,
    EpochCallback,
    EpochTimer,
    TrainResult,
    batch_order,
    check_choice,
    check_config,
    check_positive,
    check_range,
    config_dict,
    copy_state,
    current_lr,
    flatten_config,
    log_best_model,
    log_data_params,
    open_tracker,
    seed_everything,
)
from agentnn.nn_models.configs import JSONDict
from agentnn.nn_models.data_prep import PreparedData, Split, prepare_data
from agentnn.nn_models.devices import (
    DEFAULT_DEVICE,
    amp_enabled,
    autocast,
    check_device,
    grad_scaler,
    resolve_device,
)
from agentnn.nn_models.loop import (
    EpochPlan,
    TrainState,
    classifier_loss,
    run_epoch,
)
from agentnn.nn_models.mlp import ACTIVATIONS, mlp

if TYPE_CHECKING:
    import optuna
    import torch

    from agentnn.data.datasets import LabelledDataset
    from agentnn.mlflow_integration import ExperimentTracker, TrackedRun

EXPERIMENT = "architecture_optimization"
BUILDER = "agentnn.nn_models.dynamic_architecture:build_model"
ACTIVATION_NAMES = tuple(ACTIVATIONS)
LEADERBOARD_FIELDS = ("rank", "trial", "state", "run_id", "val_loss", "val_acc", "depth",
                      "hidden_sizes", "final_hidden_sizes", "dropout", "activation",
                      "learning_rate", "n_params", "reshapes")
TRIAL_MODEL_DIR = "trial_model"  # child-run artifacts: the trial's best weights and spec
TRIAL_WEIGHTS = "weights.safetensors"
TRIAL_SPEC = "spec.json"
WORKER_SEED_STRIDE = 7919  # each process samples from its own seed: seed + index * stride

LeaderboardRow: TypeAlias = JSONDict
"""One trial on the leaderboard (keys of ``LEADERBOARD_FIELDS``): stored as JSON in the study's
trial attributes and in ``leaderboard.json``; rows of older trials may lack keys."""


class Architecture(TypedDict):
    """One point of the search space, as :func:`suggest_architecture` samples it."""

    hidden_sizes: list[int]
    dropout: float
    activation: str
    learning_rate: float


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
        _check_int_list("depths", self.depths)
        _check_int_list("widths", self.widths)
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
            _warn_renamed("lr", "learning_rates", f"[{rate}, {rate}]")
        return values


def _warn_renamed(old: str, new: str, value: str = "") -> None:
    import warnings

    hint = f" = {value}" if value else ""
    warnings.warn(f"config key {old!r} is deprecated; use {new!r}{hint}", DeprecationWarning,
                  stacklevel=4)


def _check_int_list(name: str, values: list[int]) -> None:
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in values):
        raise TrainerConfigError(f"{name} must be a non-empty list of positive integers, "
                                 f"got {values!r}")


# --- the network and its reshaping -------------------------------------------------------------


SEQUENTIAL_LAYOUT = "sequential"  # the spec's "layout" for networks from nn_models.mlp


def build_model(config: JSONDict) -> torch.nn.Module:
    """The search's network from its JSON spec (what the logged model stores).

    A spec with ``layout: "sequential"`` is built by the one MLP builder
    (:func:`agentnn.nn_models.mlp.mlp`); a spec without it is a model logged before, whose
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
                return self.head(x)

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
    return incoming * outgoing


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


# --- the search space --------------------------------------------------------------------------


def suggest_architecture(trial: optuna.Trial, config: ArchitectureSearchConfig) -> Architecture:
    """One point of the space: depth, a width per layer, dropout, activation, learning rate."""
    depth = int(trial.suggest_categorical("depth", config.depths))
    hidden = [int(trial.suggest_categorical(f"width_{layer}", config.widths))
              for layer in range(1, depth + 1)]
    low, high = config.learning_rates
    learning_rate = (float(low) if low == high
                     else trial.suggest_float("learning_rate", low, high, log=True))
    return {"hidden_sizes": hidden,
            "dropout": float(trial.suggest_categorical("dropout", config.dropouts)),
            "activation": str(trial.suggest_categorical("activation", config.activations)),
            "learning_rate": learning_rate}


# --- one trial ---------------------------------------------------------------------------------


@dataclass
class TrialOutcome:
    """What one trial achieved: its leaderboard row, best weights, and whether it was cut short."""

    row: LeaderboardRow
    best_state: dict[str, torch.Tensor]
    best_spec: JSONDict
    best_metrics: dict[str, float]
    best_epoch: int
    pruned_at: int | None = None
    """The epoch the pruner stopped it at; None when it trained every epoch."""
    diverged: bool = False
    """The validation loss stopped being a finite number."""


def _make_optimizer(config: ArchitectureSearchConfig,
                    learning_rate: float) -> Callable[[torch.nn.Module], torch.optim.Optimizer]:
    import torch

    def make(model: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.AdamW(model.parameters(), lr=learning_rate,
                                 weight_decay=config.weight_decay)

    return make


def _score(model: torch.nn.Module, split: Split, amp: bool = False) -> tuple[float, float]:
    """(mean loss, accuracy) of a split, without gradients."""
    import torch
    import torch.nn.functional as F

    model.eval()
    with torch.no_grad(), autocast(split.x.device, amp):
        logits = model(split.x).float()
        return (float(F.cross_entropy(logits, split.y)),
                float((logits.argmax(dim=1) == split.y).float().mean()))


def _n_params(model: torch.nn.Module) -> int:
    return sum(param.numel() for param in model.parameters())


def train_trial(
    number: int, architecture: Architecture, data: PreparedData,
    config: ArchitectureSearchConfig, run: TrackedRun,
    should_prune: Callable[[float, int], bool] | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrialOutcome:
    """Train one architecture into ``run``, reshaping it when it stalls.

    ``should_prune(val_loss, epoch)`` is asked after every epoch (Optuna's report and
    should_prune); a True answer ends the trial early. The data is already on its device.
    """
    import torch

    device = data.train.x.device
    amp = amp_enabled(device, config.amp)
    trial_seed = config.seed * 1_000 + number
    torch.manual_seed(trial_seed)
    generator = torch.Generator().manual_seed(trial_seed)
    spec: JSONDict = {"n_features": int(data.train.x.shape[1]), "n_classes": data.n_classes,
                      "hidden_sizes": list(architecture["hidden_sizes"]),
                      "dropout": architecture["dropout"],
                      "activation": architecture["activation"], "layout": SEQUENTIAL_LAYOUT}
    make_optimizer = _make_optimizer(config, architecture["learning_rate"])
    model = build_model(spec).to(device)
    # The shared epoch core; ``stopper`` only watches for stalls (reshapes), pruning ends early.
    state = TrainState(model=model, optimizer=make_optimizer(model), scheduler=None,
                       stopper=EarlyStopping(patience=0, min_delta=config.min_delta),
                       scaler=grad_scaler(device, amp))
    watch, plan = state.stopper, EpochPlan(batch_size=config.batch_size)
    loss_fn = classifier_loss(config.train_accuracy)
    train_split = {"x": data.train.x, "y": data.train.y}
    best_state, best_spec, best_metrics = copy_state(model), dict(spec), {}
    reshapes: list[str] = []
    pruned_at, diverged = None, False
    run.log_params({**flatten_config(architecture), "depth": len(spec["hidden_sizes"]),
                    "trial": number, "epochs": config.epochs, "batch_size": config.batch_size,
                    "seed": trial_seed, "device": str(device)})
    for epoch in range(1, config.epochs + 1):
        model = state.model
        lr = current_lr(state.optimizer)
        with EpochTimer(len(data.train.y)) as timer:
            order = batch_order(len(data.train.y), seed=trial_seed, epoch=epoch).to(device)
            train = run_epoch(state, loss_fn, train_split, plan, order=order, amp=amp).means()
        train_loss = train["train_loss"]
        val_loss, val_acc = _score(model, data.val, amp)
        metrics = {**train, "val_loss": val_loss,
                   "val_acc": val_acc, "lr": lr, "n_params": float(_n_params(model)),
                   "hidden_units": float(sum(spec["hidden_sizes"])), **timer.metrics()}
        run.log_metrics(metrics, step=epoch)
        if on_epoch is not None:
            on_epoch(epoch, {**metrics, "trial": float(number)})
        if not math.isfinite(val_loss):
            diverged = True
            break
        if watch.update(val_loss, epoch):
            best_state, best_spec, best_metrics = copy_state(model), dict(spec), metrics
        elif watch.bad_epochs >= config.stall_patience and len(reshapes) < config.max_reshapes:
            action, widths = next_widths(spec["hidden_sizes"], train_loss, val_loss, config)
            if action:
                state.model, state.optimizer = reshape(model, state.optimizer, widths, spec,
                                                       make_optimizer, generator)
                spec = {**spec, "hidden_sizes": widths}
                reshapes.append(f"{epoch}:{action}:{'x'.join(map(str, widths))}")
                watch.bad_epochs = 0
        if should_prune is not None and should_prune(val_loss, epoch):
            pruned_at = epoch
            break
    run.set_tags({"agentnn.final_hidden_sizes": ",".join(map(str, spec["hidden_sizes"])),
                  "agentnn.reshapes": ";".join(reshapes) or "none"})
    row = {
        "trial": number, "run_id": run.run_id,
        "val_loss": best_metrics.get("val_loss", math.nan),
        "val_acc": best_metrics.get("val_acc", math.nan),
        "depth": len(architecture["hidden_sizes"]),
        "hidden_sizes": list(architecture["hidden_sizes"]),
        "final_hidden_sizes": list(best_spec["hidden_sizes"]),
        "dropout": architecture["dropout"], "activation": architecture["activation"],
        "learning_rate": architecture["learning_rate"],
        "n_params": int(best_metrics.get("n_params", _n_params(state.model))),
        "reshapes": len(reshapes),
    }
    return TrialOutcome(row, best_state, best_spec, best_metrics, watch.best_epoch, pruned_at,
                        diverged)


class _TrialDiverged(Exception):
    """A trial's loss became NaN or infinite: the trial fails, the study goes on."""


@dataclass
class _SearchContext:
    """What every trial of one process needs."""

    config: ArchitectureSearchConfig
    data: PreparedData
    tracker: ExperimentTracker
    parent: TrackedRun
    study_name: str
    command_id: str
    on_epoch: EpochCallback | None = None


def _objective(trial: optuna.Trial, ctx: _SearchContext) -> float:
    """One trial as a nested child run: sample, train, report, tag its final state."""
    import optuna

    search_study.mark_trial_owner(trial)
    trial.set_user_attr(search_study.COMMAND_ATTR, ctx.command_id)
    architecture = suggest_architecture(trial, ctx.config)
    tags = {search_study.STUDY_TAG: ctx.study_name, search_study.TRIAL_TAG: trial.number,
            search_study.TRIAL_STATE_TAG: "running"}

    def should_prune(val_loss: float, epoch: int) -> bool:
        trial.report(val_loss, epoch)
        return trial.should_prune()

    with ctx.tracker.start_run(run_name=f"trial-{trial.number}", nested=True,
                               tags=tags) as child:
        trial.set_user_attr(search_study.RUN_ID_ATTR, child.run_id)
        try:
            # Without a pruner nothing reads the per-epoch reports, and each is a write to the
            # study's storage: the curves are in the child run.
            pruning = should_prune if ctx.config.pruner != "none" else None
            outcome = train_trial(trial.number, architecture, ctx.data, ctx.config, child,
                                  pruning, ctx.on_epoch)
        except BaseException:
            child.set_tags({search_study.TRIAL_STATE_TAG: "failed"})
            raise
        trial.set_user_attr(search_study.ROW_ATTR, outcome.row)
        state = ("failed" if outcome.diverged
                 else "pruned" if outcome.pruned_at is not None else "complete")
        child.set_tags({search_study.TRIAL_STATE_TAG: state})
        if state == "complete":
            _log_trial_model(child, outcome)
    ctx.parent.log_metrics({"trial_val_loss": outcome.row["val_loss"],
                            "trial_val_acc": outcome.row["val_acc"]}, step=trial.number)
    if outcome.diverged:
        raise _TrialDiverged(f"trial {trial.number}: the validation loss is not finite")
    if outcome.pruned_at is not None:
        raise optuna.TrialPruned(f"pruned at epoch {outcome.pruned_at}")
    return float(outcome.row["val_loss"])


def _log_trial_model(run: TrackedRun, outcome: TrialOutcome) -> None:
    """The trial's best weights and spec on its child run, for whichever process finishes."""
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory(prefix="agentnn-trial-") as tmp:
        folder = Path(tmp)
        state = {key: value.detach().cpu().contiguous()
                 for key, value in outcome.best_state.items()}
        save_file(state, str(folder / TRIAL_WEIGHTS))
        (folder / TRIAL_SPEC).write_text(json.dumps(
            {"spec": outcome.best_spec, "best_epoch": outcome.best_epoch,
             "metrics": outcome.best_metrics}), encoding="utf-8")
        run.log_artifact(str(folder), TRIAL_MODEL_DIR)


# --- the leaderboard ---------------------------------------------------------------------------


def leaderboard_rows(trials: list[optuna.trial.FrozenTrial]) -> list[LeaderboardRow]:
    """Every finished trial of the study: complete ones ranked by val_loss (then size), then
    pruned and failed ones unranked, by trial number."""
    from optuna.trial import TrialState

    ranked: list[LeaderboardRow]
    others: list[LeaderboardRow]
    ranked, others = [], []
    for trial in trials:
        if trial.state in (TrialState.RUNNING, TrialState.WAITING):
            continue
        row = dict(trial.user_attrs.get(search_study.ROW_ATTR) or {
            "trial": trial.number, "run_id": trial.user_attrs.get(search_study.RUN_ID_ATTR)})
        row["state"] = search_study.trial_state_name(trial.state)
        (ranked if trial.state == TrialState.COMPLETE else others).append(row)
    ranked.sort(key=lambda row: (row["val_loss"], row["n_params"], row["trial"]))
    others.sort(key=lambda row: row["trial"])
    return ([{"rank": place, **row} for place, row in enumerate(ranked, start=1)]
            + [{"rank": None, **row} for row in others])


def leaderboard_csv(rows: list[LeaderboardRow]) -> str:
    """The leaderboard as CSV text (lists joined with ``x``: ``64x32``)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LEADERBOARD_FIELDS, lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "x".join(map(str, value)) if isinstance(value, list) else value
                         for key, value in row.items()})
    return buffer.getvalue()


def _log_leaderboard(run: TrackedRun, rows: list[LeaderboardRow],
                     best_spec: JSONDict) -> None:
    with tempfile.TemporaryDirectory(prefix="agentnn-search-") as tmp:
        folder = Path(tmp)
        (folder / "leaderboard.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
        (folder / "leaderboard.csv").write_text(leaderboard_csv(rows), encoding="utf-8")
        (folder / "best_architecture.json").write_text(json.dumps(best_spec, indent=2),
                                                       encoding="utf-8")
        for name in ("leaderboard.json", "leaderboard.csv", "best_architecture.json"):
            run.log_artifact(str(folder / name))


# --- the study ---------------------------------------------------------------------------------


def _sampler(config: ArchitectureSearchConfig, seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=config.sampler_startup_trials)


def _pruner(config: ArchitectureSearchConfig) -> optuna.pruners.BasePruner:
    import optuna

    if config.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=config.prune_startup_trials,
                                       n_warmup_steps=config.prune_warmup_epochs)


def _study_key(config: ArchitectureSearchConfig) -> JSONDict:
    """The config fields that define a study (not the budget or the hardware)."""
    return {key: value for key, value in config_dict(config).items()
            if key not in ("n_trials", "device", "amp", "checkpoint_dir")}


def _on_device(prepared: PreparedData, device: torch.device) -> PreparedData:
    """The splits moved to the training device once, before any trial."""
    def move(split: Split) -> Split:
        return Split(split.x.to(device), split.y.to(device))

    return PreparedData(move(prepared.train), move(prepared.val), move(prepared.test),
                        prepared.n_classes, prepared.params, prepared.metadata)


def _optimize(study: optuna.Study, ctx: _SearchContext, n_trials: int,
              on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None) -> None:
    if n_trials <= 0:
        return
    study.optimize(lambda trial: _objective(trial, ctx), n_trials=n_trials,
                   catch=(_TrialDiverged,), callbacks=[on_trial] if on_trial else None,
                   gc_after_trial=False)


def train(
    config: ArchitectureSearchConfig | JSONDict | None,
    data: LabelledDataset,
    *,
    tracker: ExperimentTracker | None = None,
    register_as: str | None = None,
    study: str | None = None,
    storage: str | None = None,
    workers: int = 1,
    resume_from: str | os.PathLike[str] | None = None,
    on_epoch: EpochCallback | None = None,
    on_trial: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Run ``n_trials`` trials of the study; log the leaderboard and the best model.

    ``study``/``storage`` name the Optuna study (default: a name derived from the search
    space and data, in a SQLite file beside the tracking store); a study that exists is
    joined, so an interrupted search resumes by running the same call again. ``workers``
    processes on this machine share the ``n_trials`` budget. ``on_epoch(epoch, metrics)``
    sees the epochs of the trials this process trains (``metrics["trial"]`` is the trial
    number); ``on_trial(done, metrics)`` counts the trials of this call as they finish.
    Bad config or data raise :class:`TrainerConfigError` before any run exists.
    """
    import uuid

    config = check_config(config, ArchitectureSearchConfig)
    if resume_from is not None:
        raise TrainerConfigError(
            "the architecture search resumes from its study, not a checkpoint: run it again "
            "with the same --study and --storage"
        )
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise TrainerConfigError(f"workers must be a whole number >= 1, got {workers!r}")
    prepared = prepare_data(data)
    device = resolve_device(config.device)
    tracker = open_tracker(tracker, EXPERIMENT)
    study_name = study or search_study.default_study_name(_study_key(config), prepared.params)
    storage_url = storage or search_study.default_storage(tracker.tracking_uri,
                                                          tracker.journal_dir)
    rdb = search_study.open_storage(storage_url)
    seed_everything(config.seed)
    optuna_study, created = search_study.open_study(
        study_name, rdb, _sampler(config, config.seed), _pruner(config))
    if not created:  # joining: sample from a seed no other process of the study uses
        offset = len(optuna_study.trials) + 1
        optuna_study.sampler = _sampler(config, config.seed + offset * WORKER_SEED_STRIDE)
    search_study.recover_interrupted(optuna_study, tracker.client)
    parent_id = None
    if not created:
        parent_id = (search_study.wait_for_parent_run(optuna_study)
                     or search_study.find_parent_run(tracker.client, tracker.experiment_id,
                                                     study_name))
    command_id = uuid.uuid4().hex
    with tracker.start_run(run_id=parent_id, run_name=study_name if parent_id is None else None,
                           tags={search_study.STUDY_TAG: study_name}) as parent:
        if parent_id is None:
            parent.log_params({**flatten_config(config), "study": study_name,
                               "storage": _masked(storage_url), "sampler": "tpe"})
            log_data_params(parent, prepared.params)
            optuna_study.set_user_attr(search_study.PARENT_RUN_ATTR, parent.run_id)
        ctx = _SearchContext(config, _on_device(prepared, device), tracker, parent, study_name,
                             command_id, on_epoch)
        progress = _progress_callback(on_trial, command_id)
        with tempfile.TemporaryDirectory(prefix="agentnn-search-job-") as job_dir:
            processes = []
            if workers > 1:
                _WorkerJob(config_dict(config), prepared.n_classes, prepared.params,
                           prepared.metadata, tracker.experiment_name, tracker.tracking_uri,
                           str(tracker.journal_dir), storage_url, study_name, parent.run_id,
                           command_id, workers).write(Path(job_dir), prepared)
                processes = [_spawn_worker(Path(job_dir), index) for index in range(1, workers)]
            finished = False
            try:
                _optimize(optuna_study, ctx,
                          search_study.worker_share(config.n_trials, workers, 0), progress)
                finished = True
            finally:
                failed = _join_workers(processes, stop=not finished)
        if failed:
            raise SearchFailedError(study_name, (
                f"{len(failed)} of {workers} search workers failed (exit codes "
                f"{', '.join(map(str, failed))}); the trials they finished are kept in the study"))
        if progress is not None:
            progress(optuna_study, None)
        return _finish(parent, tracker, optuna_study, ctx.data, config, register_as,
                       study_name)


def _masked(url: str) -> str:
    from agentnn.config import mask_uri

    return mask_uri(url)


def _progress_callback(
    on_trial: Callable[[int, dict[str, float]], None] | None, command_id: str,
) -> Callable[[optuna.Study, optuna.trial.FrozenTrial | None], None] | None:
    """Optuna callback: how many trials of this command (all its workers) have finished."""
    if on_trial is None:
        return None

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial | None) -> None:
        from optuna.trial import TrialState

        finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        done = sum(1 for item in study.get_trials(deepcopy=False, states=finished)
                   if item.user_attrs.get(search_study.COMMAND_ATTR) == command_id)
        row = dict(trial.user_attrs.get(search_study.ROW_ATTR) or {}) if trial else {}
        on_trial(done, {key: value for key, value in row.items()
                        if key in ("val_loss", "val_acc")})

    return callback


# --- worker processes --------------------------------------------------------------------------


@dataclass
class _WorkerJob:
    """Everything a worker process needs, written to a folder as JSON and one ``.npz``.

    Why files and a fresh interpreter (not multiprocessing's spawn): spawn re-imports the
    caller's ``__main__``, which re-runs a user's script that lacks a main guard.
    """

    config: JSONDict
    n_classes: int
    params: JSONDict
    metadata: JSONDict
    experiment: str
    tracking_uri: str
    journal_dir: str
    storage_url: str
    study_name: str
    parent_run_id: str
    command_id: str
    workers: int

    def write(self, folder: Path, prepared: PreparedData) -> None:
        import dataclasses

        import numpy as np

        (folder / "job.json").write_text(json.dumps(dataclasses.asdict(self), default=str),
                                         encoding="utf-8")
        np.savez(folder / "data.npz", **{
            f"{name}_{part}": getattr(split, part).cpu().numpy()
            for name, split in (("train", prepared.train), ("val", prepared.val),
                                ("test", prepared.test)) for part in ("x", "y")})

    @classmethod
    def read(cls, folder: Path) -> tuple[_WorkerJob, PreparedData]:
        import numpy as np
        import torch

        job = cls(**json.loads((folder / "job.json").read_text(encoding="utf-8")))
        with np.load(folder / "data.npz") as arrays:
            splits = {name: Split(torch.as_tensor(arrays[f"{name}_x"]),
                                  torch.as_tensor(arrays[f"{name}_y"]))
                      for name in ("train", "val", "test")}
        return job, PreparedData(splits["train"], splits["val"], splits["test"], job.n_classes,
                                 job.params, job.metadata)


def _spawn_worker(folder: Path, index: int) -> subprocess.Popen[bytes]:
    """``python -m agentnn.nn_models.search_worker <folder> <index>``, in its own group."""
    return subprocess.Popen(
        [sys.executable, "-m", "agentnn.nn_models.search_worker", str(folder), str(index)],
        start_new_session=True,
    )


def _join_workers(processes: list[subprocess.Popen[bytes]], *, stop: bool = False) -> list[int]:
    """Wait for every worker (stopping them first when ``stop``); the failed exit codes."""
    import signal

    if stop:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
    failed = []
    for process in processes:
        code = process.wait()
        if code != 0:
            failed.append(code)
    return failed


def run_worker(folder: Path, index: int) -> None:
    """A worker process: join the study and its parent run, run this worker's share."""
    import torch

    from agentnn.mlflow_integration import ExperimentTracker

    job, prepared = _WorkerJob.read(folder)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // job.workers))
    config = check_config(job.config, ArchitectureSearchConfig)
    tracker = ExperimentTracker(job.experiment, tracking_uri=job.tracking_uri,
                                journal_dir=job.journal_dir)
    rdb = search_study.open_storage(job.storage_url)
    optuna_study, _ = search_study.open_study(
        job.study_name, rdb, _sampler(config, config.seed + index * WORKER_SEED_STRIDE),
        _pruner(config))
    with tracker.start_run(run_id=job.parent_run_id) as parent:
        ctx = _SearchContext(config, _on_device(prepared, resolve_device(config.device)),
                             tracker, parent, job.study_name, job.command_id)
        _optimize(optuna_study, ctx, search_study.worker_share(config.n_trials, job.workers,
                                                               index), None)


# --- the end of a command: leaderboard and best model on the parent ----------------------------


def _finish(parent: TrackedRun, tracker: ExperimentTracker, study: optuna.Study,
            data: PreparedData, config: ArchitectureSearchConfig, register_as: str | None,
            study_name: str) -> TrainResult:
    """Leaderboard, best architecture, test score and the best model, all on the parent run.

    The study may hold trials of other processes and earlier commands; the leaderboard and
    the best model cover them all. The model is logged again only when the best trial changed
    (or a registration was asked for that has not been made).
    """
    rows = leaderboard_rows(study.get_trials(deepcopy=False))
    complete = [row for row in rows if row["state"] == "complete"]
    counts = {state: sum(1 for row in rows if row["state"] == state)
              for state in ("complete", "pruned", "failed")}
    if not complete:
        raise SearchFailedError(study_name, (
            f"no trial completed ({counts['pruned']} pruned, {counts['failed']} failed); "
            "nothing to log as the best model"))
    best = complete[0]
    model, spec, best_epoch, best_metrics = _load_trial_model(tracker, best["run_id"])
    model.to(data.train.x.device)
    test_loss, test_acc = _score(model, data.test)
    summary = {"best_val_loss": best["val_loss"], "best_val_acc": best["val_acc"],
               "test_loss": test_loss, "test_acc": test_acc,
               **{f"trials_{state}": float(count) for state, count in counts.items()}}
    parent.log_metrics(summary, step=len(rows))
    _log_leaderboard(parent, rows, spec)
    tags = tracker.client.get_run(parent.run_id).data.tags
    parent.set_tags({"agentnn.best_trial": best["trial"], "agentnn.best_child_run_id":
                     best["run_id"], "agentnn.best_hidden_sizes":
                     ",".join(map(str, spec["hidden_sizes"])), "agentnn.best_dropout":
                     spec["dropout"], "agentnn.best_activation": spec["activation"],
                     "agentnn.best_learning_rate": best["learning_rate"]})
    already = tags.get("agentnn.best_model_trial") == str(best["trial"])
    registered = tags.get("agentnn.registered_as") == (register_as or "")
    model_uri, version = tags.get("agentnn.model_uri"), None
    if not (already and registered):
        model_uri, version = log_best_model(
            model.cpu(), builder=BUILDER, config=spec,
            input_example=data.val.x[:2].cpu().numpy(), register_as=register_as,
            metadata={**data.metadata, "leaderboard_rank": 1, "study": study_name},
        )
        parent.set_tags({"agentnn.best_model_trial": best["trial"],
                         "agentnn.registered_as": register_as or ""})
    return TrainResult(
        run_id=parent.run_id, best_metrics={**best_metrics, "test_loss": test_loss,
                                            "test_acc": test_acc, "best_val_loss":
                                            best["val_loss"]},
        model_uri=model_uri, registered_version=version,
        epochs_run=sum(1 for _ in rows) * config.epochs, experiment_id=tracker.experiment_id,
        best_epoch=best_epoch, study=study_name,
    )


def _load_trial_model(
    tracker: ExperimentTracker, run_id: str,
) -> tuple[torch.nn.Module, JSONDict, int, dict[str, float]]:
    """A trial's best weights from its child run (any process or machine may have logged them)."""
    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory(prefix="agentnn-best-") as tmp:
        folder = Path(tracker.client.download_artifacts(run_id, TRIAL_MODEL_DIR, tmp))
        saved = json.loads((folder / TRIAL_SPEC).read_text(encoding="utf-8"))
        model = build_model(saved["spec"])
        model.load_state_dict(load_file(str(folder / TRIAL_WEIGHTS)))
    return model, saved["spec"], int(saved["best_epoch"]), dict(saved["metrics"])
