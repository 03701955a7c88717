"""The multi-task trainer, experiment ``multi_task_learning``: one shared encoder of the task
text, one head per task, per-task losses and metrics, fixed or learned task weights.

The tasks, all read from the interaction log:

- ``agent``: which agent should take the task (cross-entropy against the data set's best
  agent for the task; metric ``agent_acc``, the routing accuracy);
- ``success``: will agent *k* succeed on it (one logit per agent; the loss uses the logit of
  the agent that handled the record; metric ``success_acc``);
- ``response_time``: how long will agent *k* take (standardised log seconds, one output per
  agent; loss on the agent that handled it; metric ``response_time_mae`` in seconds).

The input is the task text alone, so the model routes raw task texts: the agent head ranks
agents, and the success and response-time heads say what to expect from each. Task weights
are ``fixed`` (``task_weights``) or ``uncertainty`` (Kendall et al. 2018: each task's loss is
scaled by a learned ``exp(-s)`` plus ``s``), logged per epoch as ``weight_<task>``.

The saved model carries its task configuration (``tasks``, agents, heads, target scaling) in
its JSON spec, so it rebuilds from the artifact alone.

Run example::

    from agentnn.data import load_dataset
    from agentnn.nn_models import multi_task_learning as mtl

    data = load_dataset("logs.jsonl", seed=0)
    config = mtl.MultiTaskConfig(epochs=15, weighting="uncertainty")
    result = mtl.train(config, data)
    print(result.run_id, result.best_metrics["val_agent_acc"])

or from the shell: ``agentnn train multi-task --data logs.jsonl --epochs 15``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from agentnn.errors import TrainerConfigError
from agentnn.nn_models.training import loop
from agentnn.nn_models.training.configs import (
    JSONDict,
    JSONValue,
    check_choice,
    check_config,
    check_positive,
    check_range,
    require_samples,
)
from agentnn.nn_models.training.devices import check_device
from agentnn.nn_models.training.epochs import SCHEDULERS, EpochCallback
from agentnn.nn_models.training.mlp import mlp
from agentnn.nn_models.training.results import TrainResult

if TYPE_CHECKING:
    import torch

    from agentnn.data.datasets import InteractionDataset
    from agentnn.mlflow_integration import ExperimentTracker

EXPERIMENT = "multi_task_learning"
BUILDER = "agentnn.nn_models.multi_task_learning:build_model"
TASKS = ("agent", "success", "response_time")
WEIGHTINGS = ("fixed", "uncertainty")
MIN_TRAIN_SAMPLES = 8
OUTPUT_NAMES = {"agent": "agent_logits", "success": "success_logits",
                "response_time": "response_time"}  # model output key per task
TASK_KINDS = {"agent": "classification: best agent, one logit per agent",
              "success": "binary: success logit per agent",
              "response_time": "regression: standardised log1p seconds per agent"}


@dataclass
class MultiTaskConfig:
    """Every knob of the multi-task trainer; all of it is logged as params."""

    # tasks
    tasks: list[str] = field(default_factory=lambda: list(TASKS))  # any non-empty subset
    weighting: str = "fixed"  # fixed: task_weights; uncertainty: learned per-task weights
    task_weights: dict[str, float] = field(
        default_factory=lambda: {"agent": 1.0, "success": 1.0, "response_time": 0.5}
    )  # fixed weighting only; a missing task weighs 1
    # model shape
    hidden_dims: list[int] = field(default_factory=lambda: [128, 64])  # shared encoder widths
    head_hidden_dim: int = 32  # one hidden layer per head; 0 makes heads linear
    dropout: float = 0.1
    # optimisation
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 3e-3  # AdamW
    weight_decay: float = 1e-2
    grad_clip: float = 1.0  # 0 disables clipping
    scheduler: str = "cosine"  # constant | cosine | step | plateau, per epoch
    min_learning_rate: float = 1e-5
    early_stopping_patience: int = 5  # on val_loss (the unweighted sum of task losses); 0: never
    # bookkeeping
    seed: int = 0
    log_every_steps: int = 1
    checkpoint_dir: str | None = None  # default ./checkpoints/multi_task_learning/<run id>
    keep_checkpoints: int = 2  # written on improvement and at the end
    # hardware
    device: str = "auto"  # auto (CUDA when present), cpu, cuda or mps
    amp: bool = False  # float16 mixed precision, on CUDA only

    def validate(self) -> None:
        """Raise :class:`TrainerConfigError` naming the first unusable value."""
        check_device(self.device)
        if not isinstance(self.tasks, (list, tuple)) or not self.tasks:
            raise TrainerConfigError(
                f"tasks must be a non-empty list of {', '.join(TASKS)}; got {self.tasks!r}"
            )
        for task in self.tasks:
            check_choice("task", task, TASKS)
        if len(set(self.tasks)) != len(self.tasks):
            raise TrainerConfigError(f"tasks lists a task twice: {self.tasks}")
        check_choice("weighting", self.weighting, WEIGHTINGS)
        check_choice("scheduler", self.scheduler, SCHEDULERS)
        if not isinstance(self.task_weights, dict):
            raise TrainerConfigError(
                f"task_weights must map task names to numbers, got {self.task_weights!r}"
            )
        for task, weight in self.task_weights.items():
            check_choice("task_weights key", task, TASKS)
            check_positive(f"task_weights.{task}", weight, allow_zero=True)
        if not isinstance(self.hidden_dims, (list, tuple)) or not self.hidden_dims:
            raise TrainerConfigError(
                f"hidden_dims must be a non-empty list of widths, got {self.hidden_dims!r}"
            )
        for width in self.hidden_dims:
            if isinstance(width, bool) or not isinstance(width, int) or width <= 0:
                raise TrainerConfigError(
                    f"hidden_dims must hold positive whole numbers, got {self.hidden_dims!r}"
                )
        for name in ("epochs", "batch_size", "learning_rate", "log_every_steps",
                     "keep_checkpoints"):
            check_positive(name, getattr(self, name))
        for name in ("head_hidden_dim", "weight_decay", "grad_clip", "min_learning_rate",
                     "early_stopping_patience"):
            check_positive(name, getattr(self, name), allow_zero=True)
        check_range("dropout", self.dropout, 0.0, 0.9)


# --- model -------------------------------------------------------------------------------------


def build_model(config: Mapping[str, JSONValue]) -> torch.nn.Module:
    """Rebuild the multi-task network from its spec (``tasks``, shapes, number of agents)."""
    import torch
    import torch.nn as nn

    tasks = list(config["tasks"])
    unknown = set(tasks) - set(TASKS)
    if unknown:
        raise TrainerConfigError(f"unknown multi-task task(s) {sorted(unknown)}")

    class MultiTaskNet(nn.Module):
        """Shared encoder of the task text, then one head per task; returns a dict."""

        def __init__(self) -> None:
            super().__init__()
            self.encoder = mlp(config["input_dim"], config["hidden_dims"], activation="gelu",
                               dropout=config["dropout"])
            width = config["hidden_dims"][-1] if config["hidden_dims"] else config["input_dim"]
            self.heads = nn.ModuleDict({
                OUTPUT_NAMES[task]: _head(width, config["head_hidden_dim"], config["num_agents"])
                for task in tasks
            })
            # log-variance per task for uncertainty weighting; saved so the artifact keeps them
            self.task_log_vars = nn.Parameter(torch.zeros(len(tasks)))

        def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
            shared = self.encoder(features)
            return {name: head(shared) for name, head in self.heads.items()}

    def _head(width: int, hidden: int, outputs: int) -> torch.nn.Module:
        if hidden == 0:  # a bare Linear: saved models hold its weights as "weight", not "0.weight"
            return nn.Linear(width, outputs)
        return mlp(width, [hidden], outputs, activation="gelu")

    return MultiTaskNet()


def model_spec(config: MultiTaskConfig, prepared: PreparedData) -> JSONDict:
    """The JSON spec: everything :func:`build_model` needs, including the task configuration."""
    return {
        "tasks": list(config.tasks),
        "input_dim": prepared.input_dim,
        "num_agents": len(prepared.agents),
        "hidden_dims": list(config.hidden_dims),
        "head_hidden_dim": config.head_hidden_dim,
        "dropout": config.dropout,
        "outputs": {task: OUTPUT_NAMES[task] for task in config.tasks},
    }


# --- data --------------------------------------------------------------------------------------


@dataclass
class PreparedData:
    """Tensors per split, the agents, and the response-time scaling."""

    splits: dict[str, dict[str, torch.Tensor]]
    """``train``/``val``/``test`` -> ``x``, ``label`` (best agent), ``agent`` (chosen agent),
    ``success``, ``response_time`` (standardised log seconds)."""
    agents: list[str]
    metadata: JSONDict

    @property
    def input_dim(self) -> int:
        return int(self.splits["train"]["x"].shape[1])


def prepare_data(data: InteractionDataset, config: MultiTaskConfig) -> PreparedData:
    """Tensors for every task from an interaction data set; refuses other data sets."""
    import numpy as np
    import torch

    from agentnn.data.datasets import InteractionDataset

    if not isinstance(data, InteractionDataset):
        raise TrainerConfigError(
            "multi_task_learning learns from an interaction log (agents, success, response "
            f"times); got {type(data).__name__}. Load one with agentnn.data.datasets.load_dataset"
        )
    require_samples(len(data.train), MIN_TRAIN_SAMPLES, "training split")
    require_samples(len(data.val), 1, "validation split")
    log_rt = np.log1p(data.train.response_time)
    rt_mean, rt_std = float(log_rt.mean()), float(log_rt.std() or 1.0)
    splits = {}
    for name in ("train", "val", "test"):
        split = getattr(data, name)
        tensors = split.tensors()
        scaled = (np.log1p(split.response_time) - rt_mean) / rt_std
        splits[name] = {
            "x": tensors["features"],
            "label": tensors["labels"],
            "agent": tensors["agent_index"],
            "success": tensors["success"],
            "response_time": torch.from_numpy(np.ascontiguousarray(scaled, dtype=np.float32)),
        }
    metadata = {
        **data.route_metadata(),
        "tasks": {task: TASK_KINDS[task] for task in config.tasks},
        "outputs": {task: OUTPUT_NAMES[task] for task in config.tasks},
        "target_scaling": {"response_time": {"transform": "log1p", "mean": rt_mean,
                                             "std": rt_std}},
    }
    if "agent" not in config.tasks:
        metadata.pop("route_input")  # without an agent head the model cannot route
    return PreparedData(splits, list(data.agents), metadata)


# --- losses and metrics ------------------------------------------------------------------------


def task_losses(output: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor],
                tasks: list[str]) -> dict[str, torch.Tensor]:
    """One scalar loss per task; success and response time use the agent that handled it."""
    import torch.nn.functional as F

    chosen = batch["agent"].unsqueeze(1)
    losses: dict[str, torch.Tensor] = {}
    if "agent" in tasks:
        losses["agent"] = F.cross_entropy(output["agent_logits"], batch["label"])
    if "success" in tasks:
        logit = output["success_logits"].gather(1, chosen).squeeze(1)
        losses["success"] = F.binary_cross_entropy_with_logits(logit, batch["success"])
    if "response_time" in tasks:
        predicted = output["response_time"].gather(1, chosen).squeeze(1)
        losses["response_time"] = F.mse_loss(predicted, batch["response_time"])
    return losses


def _loss_and_task_losses(model: torch.nn.Module, batch: Mapping[str, torch.Tensor],
                          tasks: list[str], config: MultiTaskConfig,
                          ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The weighted total, and each task's loss as ``<task>_loss`` (``train_<task>_loss``)."""
    losses = task_losses(model(batch["x"]), batch, tasks)
    return (combine_losses(losses, model, config),
            {f"{task}_loss": value for task, value in losses.items()})


def combine_losses(losses: Mapping[str, torch.Tensor], model: torch.nn.Module,
                   config: MultiTaskConfig) -> torch.Tensor:
    """The weighted total the optimiser minimises (fixed weights or learned uncertainty)."""
    total: torch.Tensor | float = 0.0
    for index, task in enumerate(config.tasks):
        if config.weighting == "uncertainty":
            log_var = _task_log_vars(model)[index]
            total = total + (-log_var).exp() * losses[task] + log_var
        else:
            total = total + config.task_weights.get(task, 1.0) * losses[task]
    return cast("torch.Tensor", total)  # config.tasks is never empty: a sum of tensors


def _task_log_vars(model: torch.nn.Module) -> torch.Tensor:
    """The learned log-variance per task, a parameter of the uncertainty-weighted model."""
    return cast("torch.Tensor", model.task_log_vars)


def current_task_weights(model: torch.nn.Module, config: MultiTaskConfig) -> dict[str, float]:
    """The weight each task gets now, logged per epoch as ``weight_<task>``."""
    if config.weighting == "uncertainty":
        return {f"weight_{task}": float((-_task_log_vars(model)[index].detach()).exp())
                for index, task in enumerate(config.tasks)}
    return {f"weight_{task}": float(config.task_weights.get(task, 1.0)) for task in config.tasks}


def evaluate(model: torch.nn.Module, split: Mapping[str, torch.Tensor], config: MultiTaskConfig,
             rt_scaling: Mapping[str, float]) -> dict[str, float]:
    """Per-task losses and metrics of one split; ``loss`` is the unweighted sum of task losses.

    Metrics: ``agent_acc`` (routing accuracy against the best agent), ``success_acc``,
    ``response_time_mae`` (seconds).
    """
    import torch

    was_training = model.training
    model.eval()
    with torch.no_grad():
        output = model(split["x"])
        losses = task_losses(output, split, list(config.tasks))
        metrics = {f"{task}_loss": float(value) for task, value in losses.items()}
        metrics["loss"] = float(sum(losses.values()))
        chosen = split["agent"].unsqueeze(1)
        if "agent" in config.tasks:
            predicted = output["agent_logits"].argmax(1)
            metrics["agent_acc"] = float((predicted == split["label"]).float().mean())
        if "success" in config.tasks:
            logit = output["success_logits"].gather(1, chosen).squeeze(1)
            hits = ((logit > 0).float() == split["success"]).float()
            metrics["success_acc"] = float(hits.mean())
        if "response_time" in config.tasks:
            predicted = output["response_time"].gather(1, chosen).squeeze(1)
            mean, std = rt_scaling["mean"], rt_scaling["std"]
            seconds = (predicted * std + mean).expm1()
            actual = (split["response_time"] * std + mean).expm1()
            metrics["response_time_mae"] = float((seconds - actual).abs().mean())
    model.train(was_training)
    return metrics


# --- entry point -------------------------------------------------------------------------------


def train(
    config: MultiTaskConfig | Mapping[str, JSONValue] | None,
    data: InteractionDataset,
    *,
    tracker: ExperimentTracker | None = None,
    register_as: str | None = None,
    resume_from: str | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Train all configured tasks at once, track them, log the best model.

    Args:
        config: a :class:`MultiTaskConfig`, a mapping of its keys, or None (defaults).
        data: an interaction data set from :mod:`agentnn.data`.
        tracker: an ``ExperimentTracker``; default: experiment ``multi_task_learning``.
        register_as: register the best model under this name.
        resume_from: a checkpoint file or folder; continues that run with the same config.
        on_epoch: ``on_epoch(epoch, metrics)`` after each epoch.

    Raises:
        TrainerConfigError: a bad config value, data that is not an interaction log, or a
            too-small data set, before any run is created.
    """
    config = check_config(config, MultiTaskConfig)
    prepared = prepare_data(data, config)
    rt_scaling = prepared.metadata["target_scaling"]["response_time"]
    tasks = list(config.tasks)
    task = loop.SupervisedTask(
        experiment=EXPERIMENT,
        builder=BUILDER,
        spec=model_spec(config, prepared),
        splits=prepared.splits,
        loss=lambda model, batch: _loss_and_task_losses(model, batch, tasks, config),
        evaluate=lambda model, split: evaluate(model, split, config, rt_scaling),
        data_params=data.params,
        metadata=prepared.metadata,
        epoch_extras=lambda model: current_task_weights(model, config),
        tags={"tasks": ",".join(tasks), "weighting": config.weighting},
    )
    return loop.fit(task, config, build_model, tracker=tracker, register_as=register_as,
                      resume_from=resume_from, on_epoch=on_epoch)
