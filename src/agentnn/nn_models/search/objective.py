"""One trial of the search, and how a study runs trials.

A trial samples an architecture, trains it with reshaping and pruning, logs a nested child run
and reports its best validation loss to Optuna; the study part builds the sampler and pruner
and runs trials until this command's budget is used.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from agentnn.nn_models.search import study as search_study
from agentnn.nn_models.search.config import ArchitectureSearchConfig
from agentnn.nn_models.search.leaderboard import LeaderboardRow
from agentnn.nn_models.search.network import SEQUENTIAL_LAYOUT, build_model, next_widths, reshape
from agentnn.nn_models.training.configs import (
    JSONDict,
    config_dict,
    flatten_config,
)
from agentnn.nn_models.training.data_prep import PreparedSplits, TensorSplit
from agentnn.nn_models.training.devices import (
    amp_enabled,
    autocast,
    grad_scaler,
)
from agentnn.nn_models.training.epochs import (
    EarlyStopping,
    EpochCallback,
    EpochTimer,
    batch_order,
    current_lr,
)
from agentnn.nn_models.training.loop import EpochPlan, TrainState, classifier_loss, run_epoch
from agentnn.nn_models.training.results import copy_state

if TYPE_CHECKING:
    import optuna
    import torch

    from agentnn.mlflow_integration import ExperimentTracker, TrackedRun


TRIAL_MODEL_DIR = "trial_model"  # child-run artifacts: the trial's best weights and spec
TRIAL_WEIGHTS = "weights.safetensors"
TRIAL_SPEC = "spec.json"
WORKER_SEED_STRIDE = 7919  # each process samples from its own seed: seed + index * stride
class Architecture(TypedDict):
    """One point of the search space, as :func:`suggest_architecture` samples it."""

    hidden_sizes: list[int]
    dropout: float
    activation: str
    learning_rate: float


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


def score(model: torch.nn.Module, split: TensorSplit, amp: bool = False) -> tuple[float, float]:
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
    number: int, architecture: Architecture, data: PreparedSplits,
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
        val_loss, val_acc = score(model, data.val, amp)
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


class TrialDiverged(Exception):
    """A trial's loss became NaN or infinite: the trial fails, the study goes on."""


@dataclass
class SearchContext:
    """What every trial of one process needs."""

    config: ArchitectureSearchConfig
    data: PreparedSplits
    tracker: ExperimentTracker
    parent: TrackedRun
    study_name: str
    command_id: str
    on_epoch: EpochCallback | None = None


def objective(trial: optuna.Trial, ctx: SearchContext) -> float:
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
        raise TrialDiverged(f"trial {trial.number}: the validation loss is not finite")
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


# --- running the study --------------------------------------------------------------------------


def make_sampler(config: ArchitectureSearchConfig, seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=config.sampler_startup_trials)


def make_pruner(config: ArchitectureSearchConfig) -> optuna.pruners.BasePruner:
    import optuna

    if config.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=config.prune_startup_trials,
                                       n_warmup_steps=config.prune_warmup_epochs)


def study_key(config: ArchitectureSearchConfig) -> JSONDict:
    """The config fields that define a study (not the budget or the hardware)."""
    return {key: value for key, value in config_dict(config).items()
            if key not in ("n_trials", "device", "amp", "checkpoint_dir")}


def optimize(study: optuna.Study, ctx: SearchContext, n_trials: int,
              on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None) -> None:
    if n_trials <= 0:
        return
    study.optimize(lambda trial: objective(trial, ctx), n_trials=n_trials,
                   catch=(TrialDiverged,), callbacks=[on_trial] if on_trial else None,
                   gc_after_trial=False)

