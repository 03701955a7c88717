"""The supervised training core: state, one epoch, evaluation, checkpoints, early stopping.

Why one loop: every trainer that trains in epochs steps through :func:`run_epoch` on a
:class:`TrainState`, with checkpoints from :func:`save_state` / :func:`restore_state` and
:class:`EarlyStopping`: the advanced and multi-task trainers plug a :class:`SupervisedTask`
(model builder, loss, evaluation) into :func:`fit`; the distributed job calls
:func:`run_epoch` on its shard of each epoch (with gradient accumulation and its ranks' sums);
the architecture search's trials call it once per epoch between reshapes and pruning. So
tracking, devices, mixed precision, resume and bookkeeping behave the same everywhere.

The loop keeps its own cost low, because the trainers are measured against untracked twins
(``bench/trainer_overhead.py``):

- the training metrics of an epoch are accumulated on the device during the epoch (no second
  pass over the training split, no Python float per batch);
- ``step_loss`` (the mean loss since the last one, over every rank) is read back to the host
  only every ``log_every_steps`` steps;
- a checkpoint is written when ``val_loss`` improves and at the end (or on a crash), not
  every epoch; a resume retrains the epochs after it and logs only steps not logged before.

Read it top to bottom: :class:`TrainState`, :func:`run_epoch`, :func:`evaluate_splits`,
:func:`save_state` / :func:`restore_state`, then :func:`fit`, which tells the story.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Callable
from dataclasses import Field, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from agentnn.errors import TrainerConfigError, TrainingInterrupted
from agentnn.nn_models.training.checkpoints import (
    Checkpoint,
    CheckpointManager,
    check_resume_config,
    checkpoint_dir,
    detached_copy,
    load_checkpoint,
)
from agentnn.nn_models.training.configs import (
    JSONDict,
    config_dict,
    flatten_config,
    log_data_params,
)
from agentnn.nn_models.training.devices import amp_enabled, autocast, grad_scaler, resolve_device
from agentnn.nn_models.training.epochs import (
    EarlyStopping,
    EpochCallback,
    EpochTimer,
    batch_order,
    current_lr,
    make_scheduler,
    seed_everything,
    step_scheduler,
)
from agentnn.nn_models.training.results import TrainResult, copy_state, log_best_model, open_tracker

if TYPE_CHECKING:
    import torch
    from _typeshed import DataclassInstance
    from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

    from agentnn.mlflow_integration import ExperimentTracker

    Scheduler = LRScheduler | ReduceLROnPlateau
    # The scalar to minimise, or (scalar, {name: batch-mean tensor}) for train_<name> metrics.
    LossResult = torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]
    LossFn = Callable[[torch.nn.Module, "Batch"], LossResult]

Batch = dict[str, "torch.Tensor"]
LogStep = Callable[[dict[str, float], int], None]  # run.log_metrics(metrics, step)
Reduce = Callable[["torch.Tensor"], list[float]]  # a small tensor summed over ranks, as floats


class SupervisedConfig(Protocol):
    """The optimisation fields every trainer config of :func:`fit` carries."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]  # every trainer config is a dataclass
    seed: int
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    grad_clip: float
    scheduler: str
    min_learning_rate: float
    early_stopping_patience: int
    log_every_steps: int
    checkpoint_dir: str | None
    keep_checkpoints: int


@dataclass
class SupervisedTask:
    """What one trainer plugs into :func:`fit`: its model, its loss and its metrics.

    The config must carry the shared optimisation fields (``seed``, ``epochs``, ``batch_size``,
    ``learning_rate``, ``weight_decay``, ``grad_clip``, ``scheduler``, ``min_learning_rate``,
    ``early_stopping_patience``, ``log_every_steps``, ``checkpoint_dir``, ``keep_checkpoints``;
    optionally ``scheduler_step_size``, ``scheduler_gamma``, ``early_stopping_min_delta``,
    ``device``, ``amp``).
    """

    experiment: str
    """The trainer's own MLflow experiment."""
    builder: str
    """``agentnn.nn_models.<module>:build_model``, called with ``spec`` on load."""
    spec: JSONDict
    """The JSON-able architecture config handed to the builder."""
    splits: dict[str, Batch]
    """``train``/``val``/``test`` -> tensors; ``x`` is the float32 model input."""
    loss: LossFn
    """``loss(model, batch)``: the scalar to minimise, or (scalar, {name: batch-mean tensor})
    whose extra values become ``train_<name>`` metrics, averaged over the epoch on the device."""
    evaluate: Callable[[torch.nn.Module, Batch], dict[str, float]]
    """``evaluate(model, split) -> {"loss": ..., <task metrics>}`` without gradients."""
    data_params: JSONDict
    metadata: JSONDict = field(default_factory=dict)
    """Stored with the logged model (agents, featuriser, target scaling, tasks)."""
    epoch_extras: Callable[[torch.nn.Module], dict[str, float]] | None = None
    """Extra per-epoch metrics read off the model (e.g. learned task weights)."""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class TrainState:
    """Everything that changes while training and rides in a checkpoint."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Scheduler | None
    stopper: EarlyStopping
    scaler: torch.amp.GradScaler
    epoch: int = 0
    global_step: int = 0
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    best_metrics: dict[str, float] = field(default_factory=dict)
    wrapper: torch.nn.Module | None = None
    """What the epoch calls instead of ``model`` (DistributedDataParallel around it), if any;
    checkpoints always hold ``model``'s own weights."""


@dataclass(frozen=True)
class EpochPlan:
    """How an epoch steps, where the trainers differ."""

    batch_size: int
    grad_clip: float = 0.0
    """Clip the gradient norm to this (0: no clipping)."""
    log_every_steps: int = 0
    """Log ``step_loss`` every this many optimiser steps (0: never)."""
    accumulate: int = 1
    """Micro-batches per optimiser step (gradient accumulation)."""


@dataclass
class EpochSums:
    """One process's sums over an epoch, read from the device once.

    ``train_<key>`` values are weighted by batch size, so sums of several ranks (added by
    ``reduce``) average correctly over the whole job. On the CPU they are Python floats (reading
    a CPU tensor costs nothing, adding floats costs less than a tensor operation); on an
    accelerator they stay tensors on the device, so no step waits for it.
    """

    loss: torch.Tensor | float
    extras: dict[str, torch.Tensor | float]
    samples: int
    device: torch.device

    def _stacked(self) -> torch.Tensor:
        """``[loss, *extras, samples]`` in one tensor (float64 where the device has it)."""
        import torch

        dtype = torch.float32 if self.device.type == "mps" else torch.float64
        values = [self.loss, *self.extras.values(), float(self.samples)]
        return torch.stack([torch.as_tensor(value, device=self.device).to(dtype)
                            for value in values])

    def local(self) -> dict[str, float]:
        """This process's own sums (``loss`` and each extra), not averaged."""
        values = self._stacked().tolist()
        return dict(zip(["loss", *self.extras], values[:-1]))

    def means(self, reduce: Reduce | None = None) -> dict[str, float]:
        """``train_loss`` and ``train_<key>``: one read from the device (one all-reduce)."""
        values = self._stacked()
        totals = reduce(values) if reduce is not None else values.tolist()
        count = max(totals[-1], 1.0)
        names = ["loss", *self.extras]
        return {f"train_{name}": total / count for name, total in zip(names, totals)}


class _Totals:
    """Weighted sums of the loss and the extras over an epoch, and of the loss since the last
    ``step_loss``: floats on the CPU, tensors on an accelerator (see :class:`EpochSums`)."""

    def __init__(self, device: torch.device) -> None:
        import torch

        self.on_host = device.type == "cpu"
        self.device = device
        zero = 0.0 if self.on_host else torch.zeros((), device=device)
        self.loss: torch.Tensor | float = zero
        self.extras: dict[str, torch.Tensor | float] = {}
        self.since_log: torch.Tensor | float = zero
        self.since_log_samples = 0

    def add(self, loss: torch.Tensor, extras: dict[str, torch.Tensor], weight: int) -> None:
        value: torch.Tensor | float
        if self.on_host:
            value = loss.item() * weight
            for key, extra in extras.items():
                self.extras[key] = self.extras.get(key, 0.0) + extra.item() * weight
        else:
            value = loss.detach().float() * weight
            for key, extra in extras.items():
                self.extras[key] = self.extras.get(key, 0) + extra.detach().float() * weight
        self.loss += value
        self.since_log += value
        self.since_log_samples += weight

    def take_since_log(self, reduce: Reduce | None) -> tuple[float, float]:
        """The loss sum and samples since the last call, over every rank; then start again."""
        import torch

        if reduce is None and self.on_host:
            taken = (float(self.since_log), float(self.since_log_samples))
        else:
            values = torch.stack([torch.as_tensor(self.since_log, device=self.device).double(),
                                  torch.tensor(float(self.since_log_samples),
                                               dtype=torch.float64, device=self.device)])
            summed = (reduce or _plain_values)(values)
            taken = (summed[0], summed[1])
        self.since_log = 0.0 if self.on_host else torch.zeros((), device=self.device)
        self.since_log_samples = 0
        return taken

    def epoch(self, samples: int) -> EpochSums:
        return EpochSums(self.loss, self.extras, samples, self.device)


def _split_loss(result: LossResult) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    if isinstance(result, tuple):
        return result[0], result[1]
    return result, {}


def _plain_values(values: torch.Tensor) -> list[float]:
    return values.tolist()


def run_epoch(
    state: TrainState,
    loss_fn: LossFn,
    split: Batch,
    plan: EpochPlan,
    *,
    order: torch.Tensor,
    amp: bool,
    log_step: LogStep | None = None,
    first_step_to_log: int = 1,
    reduce: Reduce | None = None,
) -> EpochSums:
    """One pass over ``split`` in ``order`` (this process's share of the epoch's indices).

    Every ``plan.accumulate`` micro-batches make one optimiser step; their gradients are
    weighted by size, so the step follows the window's mean loss. Under
    DistributedDataParallel (``state.wrapper``) only a window's last micro-batch synchronises
    gradients. ``step_loss`` is the mean loss since the last one, summed over ranks with
    ``reduce``, every ``plan.log_every_steps`` steps (a step every rank reaches).
    """
    import torch

    model, optimizer, scaler = state.wrapper or state.model, state.optimizer, state.scaler
    device = split["x"].device
    model.train()
    totals = _Totals(device)
    batches = list(torch.split(order, plan.batch_size))
    no_sync = getattr(model, "no_sync", None) if plan.accumulate > 1 else None
    casting = autocast(device, True) if amp else contextlib.nullcontext()
    optimizer.zero_grad(set_to_none=True)
    for first in range(0, len(batches), plan.accumulate):
        window = batches[first:first + plan.accumulate]
        window_samples = sum(len(index) for index in window)
        for number, index in enumerate(window, start=1):
            batch = {key: value[index] for key, value in split.items()}
            weight = len(index)
            syncs = number == len(window)
            with contextlib.nullcontext() if syncs or no_sync is None else no_sync():
                with casting:
                    loss, extras = _split_loss(loss_fn(model, batch))
                scaled = loss if weight == window_samples else loss * (weight / window_samples)
                (scaler.scale(scaled) if amp else scaled).backward()
            totals.add(loss, extras, weight)
        if plan.grad_clip > 0:
            if amp:
                scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), plan.grad_clip)
        if amp:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        state.global_step += 1
        if plan.log_every_steps and state.global_step % plan.log_every_steps == 0:
            logged_sum, logged_samples = totals.take_since_log(reduce)  # every rank is here
            if log_step is not None and state.global_step >= first_step_to_log:
                log_step({"step_loss": logged_sum / max(logged_samples, 1.0)},
                         state.global_step)
    return totals.epoch(len(order))


def classification_loss(
    model: torch.nn.Module, batch: Batch
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Cross-entropy of ``model(x)`` against ``y``, and the batch's accuracy as ``acc``."""
    import torch.nn.functional as F

    logits = model(batch["x"])
    correct = logits.detach().argmax(dim=1) == batch["y"]
    return F.cross_entropy(logits.float(), batch["y"]), {"acc": correct.float().mean()}


def cross_entropy_loss(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Cross-entropy of ``model(x)`` against ``y`` alone (no ``train_acc``).

    For loops that do not report the training accuracy: on small models its four tensor
    operations a step measured about 6% of the step (``bench/trainer_overhead.py``).
    """
    import torch.nn.functional as F

    return F.cross_entropy(model(batch["x"]).float(), batch["y"])


def classifier_loss(train_accuracy: bool) -> LossFn:
    """The classifier's loss for a config's ``train_accuracy``: with the batch accuracy or
    without it."""
    return classification_loss if train_accuracy else cross_entropy_loss


def supervised_plan(config: SupervisedConfig) -> EpochPlan:
    """The epoch plan of a :func:`fit` config."""
    return EpochPlan(batch_size=config.batch_size, grad_clip=config.grad_clip,
                     log_every_steps=config.log_every_steps)


def evaluate_splits(task: SupervisedTask, model: torch.nn.Module, names: tuple[str, ...],
                    amp: bool) -> dict[str, float]:
    """``<split>_<metric>`` for each named split, without gradients."""
    metrics: dict[str, float] = {}
    for name in names:
        split = task.splits.get(name)
        if split is None or not len(split["x"]):
            continue
        with autocast(split["x"].device, amp):
            metrics.update({f"{name}_{key}": value
                            for key, value in task.evaluate(model, split).items()})
    return metrics


def save_state(saver: CheckpointManager, state: TrainState, config: DataclassInstance, run_id: str,
               spec: JSONDict, *, background: bool = False) -> None:
    """An atomic checkpoint of the whole state (weights on the CPU, so any device resumes).

    The state is copied here, on the training thread; with ``background`` the file is written
    on the saver's thread while training goes on (see ``CheckpointManager.save_in_background``).
    """
    checkpoint = state_checkpoint(state, config, run_id, spec)
    if background:
        saver.save_in_background(checkpoint)
    else:
        saver.save(checkpoint)


def state_checkpoint(state: TrainState, config: DataclassInstance, run_id: str,
                     spec: JSONDict) -> Checkpoint:
    """The whole state as a checkpoint in memory: weights, optimiser, schedule, early stopping,
    best epoch, RNG; copied, so training may go on while it is kept or written."""
    import torch

    return Checkpoint(
        config=config_dict(config),
        model_state=detached_copy(state.model.state_dict()),
        optimizer_state=detached_copy(state.optimizer.state_dict()), epoch=state.epoch,
        global_step=state.global_step, run_id=run_id,
        scheduler_state=(copy.deepcopy(state.scheduler.state_dict())
                         if state.scheduler is not None else {}),
        extra={"early_stopping": state.stopper.state_dict(),
               "best_state": detached_copy(state.best_state),
               "best_metrics": dict(state.best_metrics), "model_spec": spec,
               "torch_rng_state": torch.get_rng_state()},
    )


def restore_state(state: TrainState, checkpoint: Checkpoint, device: torch.device) -> None:
    """Continue from a checkpoint: weights, optimiser, schedule, early stopping, RNG.

    Also reads the distributed trainer's checkpoints written before it shared this loop
    (early stopping under ``stopper``, no RNG state).
    """
    import torch

    extra = checkpoint.extra
    state.model.load_state_dict(checkpoint.model_state)
    state.optimizer.load_state_dict(checkpoint.optimizer_state)
    if state.scheduler is not None and checkpoint.scheduler_state:
        state.scheduler.load_state_dict(checkpoint.scheduler_state)
    state.stopper.load_state_dict(
        extra["early_stopping"] if "early_stopping" in extra else extra.get("stopper", {}))
    state.best_state = {k: v.to(device) for k, v in extra["best_state"].items()}
    state.best_metrics = dict(extra["best_metrics"])
    if "torch_rng_state" in extra:
        torch.set_rng_state(extra["torch_rng_state"])
    state.epoch, state.global_step = checkpoint.epoch, checkpoint.global_step


def _check_resume(checkpoint: Checkpoint, config: SupervisedConfig,
                  task: SupervisedTask) -> None:
    check_resume_config(checkpoint, config)
    if checkpoint.epoch >= config.epochs:
        raise TrainerConfigError(
            f"run {checkpoint.run_id} already finished all {config.epochs} epochs at its "
            "last checkpoint; there is nothing to resume"
        )
    if checkpoint.extra.get("model_spec") != task.spec:
        raise TrainerConfigError(
            f"checkpoint of run {checkpoint.run_id} was trained on data of another shape "
            f"({checkpoint.extra.get('model_spec')} vs {task.spec})"
        )


def _logged_up_to(tracker: ExperimentTracker, run_id: str, key: str) -> int:
    """The highest step of ``key`` the store already holds for a resumed run (0 if none)."""
    history = tracker.client.get_metric_history(run_id, key)
    return max((metric.step for metric in history), default=0)


def _on_device(splits: dict[str, Batch], device: torch.device) -> dict[str, Batch]:
    return {name: {key: value.to(device) for key, value in split.items()}
            for name, split in splits.items()}


def fit(
    task: SupervisedTask,
    config: SupervisedConfig,
    build_model: Callable[[JSONDict], torch.nn.Module],
    *,
    tracker: ExperimentTracker | None = None,
    register_as: str | None = None,
    resume_from: str | os.PathLike[str] | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Train with AdamW, a per-epoch LR schedule, gradient clipping and early stopping on
    ``val_loss``; track everything; log and optionally register the best epoch's model.

    Resume (``resume_from``) reopens the checkpoint's run and continues epochs and steps;
    a different config or data shape raises :class:`TrainerConfigError` before the run opens.
    """
    import torch

    checkpoint = load_checkpoint(resume_from) if resume_from is not None else None
    if checkpoint is not None:
        _check_resume(checkpoint, config, task)
    device = resolve_device(getattr(config, "device", "cpu"))
    amp = amp_enabled(device, getattr(config, "amp", False))
    task.splits = _on_device(task.splits, device)  # 1. data and model move once
    seed_everything(config.seed)
    model = build_model(task.spec).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    state = TrainState(
        model=model, optimizer=optimizer,
        scheduler=make_scheduler(
            optimizer, config.scheduler, epochs=config.epochs, min_lr=config.min_learning_rate,
            step_size=getattr(config, "scheduler_step_size", 10),
            gamma=getattr(config, "scheduler_gamma", 0.5)),
        stopper=EarlyStopping(config.early_stopping_patience,
                              getattr(config, "early_stopping_min_delta", 0.0)),
        scaler=grad_scaler(device, amp), best_state=copy_state(model),
    )
    if checkpoint is not None:
        restore_state(state, checkpoint, device)
    plan = supervised_plan(config)

    tracker = open_tracker(tracker, task.experiment)
    run_id = checkpoint.run_id if checkpoint is not None else None
    with tracker.start_run(run_id=run_id, tags={"trainer": task.experiment, **task.tags}) as run:
        logged_epochs = logged_steps = 0
        if checkpoint is None:  # 2. params once: the config, the device it ran on, the data
            params = flatten_config(config)
            if "device" in params:
                params["device.requested"] = params.pop("device")
            run.log_params({**params, "device": str(device)})
            run.log_params(flatten_config(task.spec, prefix="model."))
            log_data_params(run, task.data_params)
        else:  # a resume retrains epochs after the checkpoint: log only what is new
            logged_epochs = _logged_up_to(tracker, run.run_id, "val_loss")
            logged_steps = _logged_up_to(tracker, run.run_id, "step_loss")
        # the checkpoints of improving epochs are written while training goes on; leaving this
        # block waits for the last one (and raises its error)
        with CheckpointManager(
            checkpoint_dir(config.checkpoint_dir, task.experiment, run.run_id),
            config.keep_checkpoints,
        ) as saver:
            saved_epoch, between_epochs = state.epoch, True
            # The last finished epoch, kept in memory when it was not written (it did not
            # improve): an interrupt in the next epoch writes it, so Ctrl-C loses at most the
            # epoch in progress. A copy of a small router's state costs a millisecond or two.
            last_finished: Checkpoint | None = None
            try:
                while state.epoch < config.epochs:  # 3. epochs: train, evaluate, track, stop
                    between_epochs = False
                    with EpochTimer(len(task.splits["train"]["x"])) as timer:
                        train = task.splits["train"]
                        order = batch_order(len(train["x"]), seed=config.seed,
                                            epoch=state.epoch + 1).to(device)
                        metrics = run_epoch(state, task.loss, train, plan, order=order, amp=amp,
                                            log_step=run.log_metrics,
                                            first_step_to_log=logged_steps + 1).means()
                    metrics.update(evaluate_splits(task, model, ("val",), amp))
                    if task.epoch_extras is not None:
                        metrics.update(task.epoch_extras(model))
                    metrics.update(timer.metrics(), lr=current_lr(optimizer))
                    state.epoch, between_epochs = state.epoch + 1, True
                    if state.epoch > logged_epochs:
                        run.log_metrics(metrics, step=state.epoch)
                    improved = state.stopper.update(metrics["val_loss"], state.epoch)
                    if improved:
                        state.best_state, state.best_metrics = copy_state(model), dict(metrics)
                    if state.scheduler is not None:
                        step_scheduler(state.scheduler, metrics["val_loss"])
                    if improved:  # 4. checkpoint on improvement (and at the end, below)
                        save_state(saver, state, config, run.run_id, task.spec, background=True)
                        saved_epoch, last_finished = state.epoch, None
                    else:
                        last_finished = state_checkpoint(state, config, run.run_id, task.spec)
                    if on_epoch is not None:
                        on_epoch(state.epoch, metrics)
                    if state.stopper.should_stop:
                        run.set_tags({"stopped_early_at_epoch": str(state.epoch)})
                        break
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM: keep the last finished epoch
                if between_epochs and state.epoch > saved_epoch:
                    save_state(saver, state, config, run.run_id, task.spec)
                    saved_epoch = state.epoch
                elif last_finished is not None and last_finished.epoch > saved_epoch:
                    saver.save(last_finished)
                    saved_epoch = last_finished.epoch
                saver.wait()
                raise TrainingInterrupted(run.run_id, saver.path_for(saved_epoch)
                                          if saved_epoch > 0 else None, saved_epoch) from None
            finally:  # a crash between epochs keeps the last finished one; mid-epoch, the last
                if between_epochs and state.epoch > saved_epoch:  # saved (written at once)
                    save_state(saver, state, config, run.run_id, task.spec)

        model.load_state_dict(state.best_state)  # 5. the best epoch: test it, log it
        best = state.stopper.best
        assert best is not None  # set by the first epoch, and every run trains at least one
        final = {"best_epoch": float(state.stopper.best_epoch), "best_val_loss": float(best)}
        final.update(evaluate_splits(task, model, ("test",), amp))
        run.log_metrics(final)
        model_uri, version = log_best_model(
            model.cpu(), builder=task.builder, config=task.spec,
            input_example=task.splits["val"]["x"][:5].cpu().numpy(), register_as=register_as,
            metadata=task.metadata,
        )
    return TrainResult(
        run_id=run.run_id, best_metrics={**state.best_metrics, **final}, model_uri=model_uri,
        registered_version=version, epochs_run=state.epoch,
        experiment_id=tracker.experiment_id, best_epoch=state.stopper.best_epoch,
        checkpoint_dir=str(saver.directory), stopped_early=state.stopper.should_stop,
    )
