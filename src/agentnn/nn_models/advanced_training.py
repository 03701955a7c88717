"""The advanced trainer, experiment ``advanced_training``: two networks that learn from
interaction logs, with everything tracked.

``mode="multimodal"`` trains a hierarchical multi-modal network. Three encoders read the
task embedding (hashed task text), the chosen agent's past metrics (success rate, response
time, confidence, computed from the training split only) and the user feedback the agent got
(rating histogram, mean rating in the task's domain); attention across the three encodings
lets each modality weigh the others; two heads predict whether the chosen agent succeeds (a
logit) and its performance (log response time and confidence, standardised). All targets come
from the records.

``mode="classifier"`` trains the router: from the task text alone, which agent is best
(the agent of the successful records). It is what ``agentnn quickstart`` and ``route()`` use.
On ``--dataset digits`` the same path classifies scikit-learn's handwritten digits, in an
experiment of its own (``advanced_training_digits``), so a digits classifier never wins
``agentnn model best advanced_training``, where routers are looked for.

Both use AdamW, a per-epoch LR schedule, gradient clipping and early stopping on ``val_loss``,
log the whole config, the data params, per-step and per-epoch metrics, and the best epoch's
model in the safe format (weights + JSON spec + sha256).

Run example::

    from agentnn.data import load_dataset
    from agentnn.nn_models import advanced_training as at

    data = load_dataset("logs.jsonl", seed=0)       # or load_dataset("digits")
    config = at.AdvancedTrainingConfig(mode="classifier", epochs=20, seed=0)
    result = at.train(config, data, register_as="agent-router")
    print(result.run_id, result.best_metrics["val_acc"], result.model_uri)

or from the shell: ``agentnn train advanced --data logs.jsonl --epochs 20``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
from agentnn.nn_models.training.results import TrainResult, experiment_for

if TYPE_CHECKING:
    import torch

    from agentnn.data.datasets import InteractionDataset, LabelledDataset
    from agentnn.mlflow_integration import ExperimentTracker

EXPERIMENT = "advanced_training"
BUILDER = "agentnn.nn_models.advanced_training:build_model"
MODES = ("multimodal", "classifier")
MIN_TRAIN_SAMPLES = 8  # fewer cannot fill one batch and a validation split
PERFORMANCE_TARGETS = ("response_time", "confidence")  # the performance head's outputs


@dataclass
class AdvancedTrainingConfig:
    """Every knob of the advanced trainer; all of it is logged as params."""

    # what to train
    mode: str = "multimodal"  # multimodal: success + performance heads; classifier: best agent
    # model shape
    hidden_dim: int = 64  # width of each modality encoder and of the classifier's layers
    attention_heads: int = 4  # must divide hidden_dim
    num_layers: int = 2  # hidden layers of the classifier path (1..6)
    dropout: float = 0.1  # 0..0.9; applied after every hidden layer
    # optimisation
    epochs: int = 20  # upper bound; early stopping may end sooner
    batch_size: int = 64
    learning_rate: float = 3e-3  # AdamW
    weight_decay: float = 1e-2  # AdamW's decoupled weight decay
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping
    scheduler: str = "cosine"  # constant | cosine | step | plateau, stepped once per epoch
    min_learning_rate: float = 1e-5  # floor of cosine and plateau
    scheduler_step_size: int = 10  # epochs between decays of the step scheduler
    scheduler_gamma: float = 0.5  # decay factor of step and plateau
    early_stopping_patience: int = 5  # epochs without a better val_loss; 0 never stops
    early_stopping_min_delta: float = 0.0
    performance_loss_weight: float = 0.5  # multimodal: total = success BCE + w * performance MSE
    # bookkeeping
    seed: int = 0  # seeds weights, dropout and batch order; same seed, same metrics on CPU
    log_every_steps: int = 1  # per-step ``step_loss`` every N optimiser steps
    train_accuracy: bool = True  # count train_acc / train_success_acc from the batches
    checkpoint_dir: str | None = None  # default ./checkpoints/advanced_training/<run id>
    keep_checkpoints: int = 2  # the last N checkpoints (written on improvement and at the end)
    # hardware
    device: str = "auto"  # auto (CUDA when present), cpu, cuda or mps
    amp: bool = False  # float16 mixed precision, on CUDA only

    def validate(self) -> None:
        """Raise :class:`TrainerConfigError` naming the first unusable value."""
        check_choice("mode", self.mode, MODES)
        check_device(self.device)
        check_choice("scheduler", self.scheduler, SCHEDULERS)
        for name in ("hidden_dim", "attention_heads", "epochs", "batch_size", "learning_rate",
                     "scheduler_step_size", "log_every_steps", "keep_checkpoints"):
            check_positive(name, getattr(self, name))
        for name in ("weight_decay", "grad_clip", "min_learning_rate", "early_stopping_min_delta",
                     "performance_loss_weight", "early_stopping_patience"):
            check_positive(name, getattr(self, name), allow_zero=True)
        check_range("num_layers", self.num_layers, 1, 6)
        check_range("dropout", self.dropout, 0.0, 0.9)
        check_range("scheduler_gamma", self.scheduler_gamma, 0.0, 1.0, high_open=True)
        check_positive("scheduler_gamma", self.scheduler_gamma)
        if self.hidden_dim % self.attention_heads:
            raise TrainerConfigError(
                f"hidden_dim ({self.hidden_dim}) must be divisible by attention_heads "
                f"({self.attention_heads})"
            )


# --- models ------------------------------------------------------------------------------------


def build_model(config: Mapping[str, JSONValue]) -> torch.nn.Module:
    """Rebuild a network from its JSON-able spec; the model format calls this on load.

    ``config["kind"]`` is ``multimodal`` or ``classifier``; the other keys are the shapes
    that :func:`model_spec` wrote.
    """
    kind = config.get("kind")
    if kind == "multimodal":
        return _multimodal_class()(config)
    if kind == "classifier":
        return _classifier_class()(config)
    raise TrainerConfigError(f"unknown advanced_training model kind {kind!r}")


def _classifier_class() -> type[torch.nn.Module]:
    import torch.nn as nn

    class AgentClassifier(nn.Module):
        """Feature vector -> one logit per class (agent, or digit)."""

        def __init__(self, config: Mapping[str, JSONValue]) -> None:
            super().__init__()
            self.body = mlp(config["input_dim"], [config["hidden_dim"]] * config["num_layers"],
                            activation="gelu", dropout=config["dropout"])
            self.head = nn.Linear(config["hidden_dim"], config["num_classes"])

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            logits: torch.Tensor = self.head(self.body(features))
            return logits

    return AgentClassifier


def _multimodal_class() -> type[torch.nn.Module]:
    import torch
    import torch.nn as nn

    class HierarchicalMultiModalNet(nn.Module):
        """[task | agent metrics | feedback] -> {success_logit, performance}.

        One float32 input tensor, split by the recorded widths, so the logged model can be
        fed by a pyfunc; the output is a dict of tensors.
        """

        def __init__(self, config: Mapping[str, JSONValue]) -> None:
            super().__init__()
            hidden = config["hidden_dim"]
            dropout = config["dropout"]
            self.widths = [config["task_dim"], config["agent_dim"], config["feedback_dim"]]
            self.encoders = nn.ModuleList(
                [mlp(width, [hidden], activation="gelu", dropout=dropout)
                 for width in self.widths]
            )
            self.modality_embedding = nn.Parameter(torch.zeros(len(self.widths), hidden))
            self.attention = nn.MultiheadAttention(
                hidden, config["attention_heads"], dropout=dropout, batch_first=True
            )
            self.norm = nn.LayerNorm(hidden)
            self.fusion = mlp(hidden * len(self.widths), [hidden], activation="gelu",
                              dropout=dropout)
            self.success_head = nn.Linear(hidden, 1)
            self.performance_head = nn.Linear(hidden, config["num_performance"])

        def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
            parts = torch.split(features, self.widths, dim=1)
            tokens = torch.stack(
                [encoder(part) for encoder, part in zip(self.encoders, parts)], dim=1
            ) + self.modality_embedding
            attended, _ = self.attention(tokens, tokens, tokens, need_weights=False)
            fused = self.fusion(self.norm(tokens + attended).flatten(1))
            return {
                "success_logit": self.success_head(fused).squeeze(1),
                "performance": self.performance_head(fused),
            }

    return HierarchicalMultiModalNet


def model_spec(config: AdvancedTrainingConfig, prepared: PreparedData) -> JSONDict:
    """The JSON-able shape :func:`build_model` needs; logged with the weights."""
    spec: JSONDict = {
        "kind": config.mode,
        "hidden_dim": config.hidden_dim,
        "dropout": config.dropout,
        "input_dim": prepared.input_dim,
    }
    if config.mode == "classifier":
        spec.update(num_layers=config.num_layers, num_classes=prepared.num_classes)
    else:
        spec.update(attention_heads=config.attention_heads,
                    num_performance=len(PERFORMANCE_TARGETS), **prepared.widths)
    return spec


# --- data --------------------------------------------------------------------------------------


@dataclass
class PreparedData:
    """Tensors per split plus what the model spec and its metadata need."""

    splits: dict[str, dict[str, torch.Tensor]]
    """``train``/``val``/``test`` -> ``{"x": float32 (n, d), <targets>}``."""
    num_classes: int
    """Classifier path: agents (or digits); 0 for the multimodal path."""
    widths: dict[str, int]
    """Multimodal input layout: ``task_dim``, ``agent_dim``, ``feedback_dim``."""
    metadata: JSONDict
    """Stored with the model: agents, featuriser, route input, target scaling."""

    @property
    def input_dim(self) -> int:
        return int(self.splits["train"]["x"].shape[1])


def prepare_data(data: LabelledDataset, config: AdvancedTrainingConfig) -> PreparedData:
    """Turn a data set from :mod:`agentnn.data` into tensors for ``config.mode``.

    Raises :class:`TrainerConfigError` for a data set that is not one, is too small, or (for
    the multimodal path) is not an interaction log.
    """
    from agentnn.data.datasets import InteractionDataset, LabelledDataset

    if not isinstance(data, LabelledDataset):
        raise TrainerConfigError(
            "advanced_training needs a data set from agentnn.data (load_dataset, "
            f"build_interaction_dataset or load_digits_dataset), got {type(data).__name__}"
        )
    require_samples(len(data.train), MIN_TRAIN_SAMPLES, "training split")
    require_samples(len(data.val), 1, "validation split")
    if config.mode == "classifier":
        return _classifier_inputs(data)
    if not isinstance(data, InteractionDataset):
        raise TrainerConfigError(
            "mode 'multimodal' learns from interaction logs (agents, outcomes, feedback); "
            "use mode 'classifier' for a plain labelled data set such as digits"
        )
    return _multimodal_inputs(data)


def _classifier_inputs(data: LabelledDataset) -> PreparedData:
    splits = {}
    for name in ("train", "val", "test"):
        tensors = getattr(data, name).tensors()
        splits[name] = {"x": tensors["features"], "label": tensors["labels"]}
    if hasattr(data, "route_metadata"):
        metadata = data.route_metadata()
    else:
        metadata = {"classes": list(data.class_names), "input_dim": data.feature_dim}
    return PreparedData(splits, data.n_classes, {}, metadata)


def _multimodal_inputs(data: InteractionDataset) -> PreparedData:
    """[task features | agent one-hot + history | agent feedback histogram] per record.

    The agent and feedback parts are per-agent vectors computed from the training split only,
    so validation and test figures carry no leakage; they are stored in the model metadata
    (``agent_inputs``) so a caller can score every agent for a new task.
    """
    import numpy as np
    import torch

    n_agents = data.n_agents
    train = data.train
    feedback_rows = []
    for agent in range(n_agents):
        ratings = train.user_feedback[train.agent_index == agent]
        histogram = np.array([np.mean(np.rint(ratings) == r) if len(ratings) else 0.2
                              for r in range(1, 6)], dtype=np.float32)
        mean = (float(ratings.mean()) - 1.0) / 4.0 if len(ratings) else 0.5
        feedback_rows.append(np.append(histogram, mean))
    feedback_table = np.asarray(feedback_rows, dtype=np.float32)
    agent_table = np.concatenate(
        [np.eye(n_agents, dtype=np.float32), data.agent_history.astype(np.float32)], axis=1
    )
    log_rt = np.log1p(train.response_time)
    scaling = {
        "response_time": {"transform": "log1p", "mean": float(log_rt.mean()),
                          "std": float(log_rt.std() or 1.0)},
        "confidence": {"transform": "identity", "mean": float(train.confidence.mean()),
                       "std": float(train.confidence.std() or 1.0)},
    }
    splits = {}
    for name in ("train", "val", "test"):
        split = getattr(data, name)
        inputs = np.concatenate([split.features, agent_table[split.agent_index],
                                 feedback_table[split.agent_index]], axis=1)
        performance = np.stack([
            (np.log1p(split.response_time) - scaling["response_time"]["mean"])
            / scaling["response_time"]["std"],
            (split.confidence - scaling["confidence"]["mean"]) / scaling["confidence"]["std"],
        ], axis=1)
        splits[name] = {
            "x": torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32)),
            "success": torch.from_numpy(np.ascontiguousarray(split.success, dtype=np.float32)),
            "performance": torch.from_numpy(np.ascontiguousarray(performance, dtype=np.float32)),
        }
    widths = {"task_dim": data.feature_dim, "agent_dim": agent_table.shape[1],
              "feedback_dim": feedback_table.shape[1]}
    metadata = {
        "agents": list(data.agents),
        "featurizer": data.featurizer.config(),
        "input_layout": widths,
        "agent_inputs": np.concatenate([agent_table, feedback_table], axis=1).round(6).tolist(),
        "outputs": {"success_logit": "success of the chosen agent (logit)",
                    "performance": list(PERFORMANCE_TARGETS)},
        "target_scaling": scaling,
    }
    return PreparedData(splits, 0, widths, metadata)


# --- losses and evaluation ---------------------------------------------------------------------


def compute_loss(model: torch.nn.Module, batch: Mapping[str, torch.Tensor],
                 config: AdvancedTrainingConfig) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The scalar loss the optimiser minimises, for either mode, and the batch's accuracy.

    The accuracy is a tensor (no host sync); the loop averages it into ``train_acc`` /
    ``train_success_acc`` without a second pass over the training split.
    """
    output = model(batch["x"])
    loss = loss_of(output, batch, config)
    if not config.train_accuracy:
        return loss, {}
    if config.mode == "classifier":
        return loss, {"acc": (output.argmax(1) == batch["label"]).float().mean()}
    correct = ((output["success_logit"] > 0).float() == batch["success"]).float().mean()
    return loss, {"success_acc": correct}


def loss_of(output: torch.Tensor | Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor],
            config: AdvancedTrainingConfig) -> torch.Tensor:
    """Cross-entropy (classifier), or success BCE + weighted performance MSE (multimodal)."""
    import torch.nn.functional as F

    if config.mode == "classifier":  # the classifier returns logits, the multimodal net a dict
        return F.cross_entropy(cast("torch.Tensor", output), batch["label"])
    heads = cast("Mapping[str, torch.Tensor]", output)
    success = F.binary_cross_entropy_with_logits(heads["success_logit"], batch["success"])
    performance = F.mse_loss(heads["performance"], batch["performance"])
    return success + config.performance_loss_weight * performance


def evaluate(model: torch.nn.Module, split: Mapping[str, torch.Tensor],
             config: AdvancedTrainingConfig,
             metadata: Mapping[str, JSONValue] | None = None) -> dict[str, float]:
    """Loss and task metrics of one split, without gradients, in eval mode.

    Classifier: ``loss``, ``acc``. Multimodal: ``loss``, ``success_loss``, ``success_acc``,
    ``performance_loss``, ``response_time_mae`` (seconds) and ``confidence_mae``.
    """
    import torch
    import torch.nn.functional as F

    was_training = model.training
    model.eval()
    with torch.no_grad():
        output = model(split["x"])
        metrics = {"loss": float(loss_of(output, split, config))}
        if config.mode == "classifier":
            metrics["acc"] = float((output.argmax(1) == split["label"]).float().mean())
        else:
            logits = output["success_logit"]
            metrics["success_loss"] = float(
                F.binary_cross_entropy_with_logits(logits, split["success"]))
            predicted_success = (logits > 0).float()
            metrics["success_acc"] = float((predicted_success == split["success"]).float().mean())
            metrics["performance_loss"] = float(
                F.mse_loss(output["performance"], split["performance"]))
            actual = _unscale(split["performance"], metadata or {})
            predicted = _unscale(output["performance"], metadata or {})
            for index, name in enumerate(PERFORMANCE_TARGETS):
                error = (predicted[:, index] - actual[:, index]).abs()
                metrics[f"{name}_mae"] = float(error.mean())
    model.train(was_training)
    return metrics


def _unscale(performance: torch.Tensor, metadata: Mapping[str, JSONValue]) -> torch.Tensor:
    """Standardised performance columns back to seconds and 0..1 confidence."""
    import torch

    columns = []
    scaling = metadata.get("target_scaling", {})
    for index, name in enumerate(PERFORMANCE_TARGETS):
        rule = scaling.get(name, {"mean": 0.0, "std": 1.0, "transform": "identity"})
        column = performance[:, index] * rule["std"] + rule["mean"]
        columns.append(column.expm1() if rule["transform"] == "log1p" else column)
    return torch.stack(columns, dim=1)


# --- entry point -------------------------------------------------------------------------------


def train(
    config: AdvancedTrainingConfig | Mapping[str, JSONValue] | None,
    data: LabelledDataset,
    *,
    tracker: ExperimentTracker | None = None,
    register_as: str | None = None,
    resume_from: str | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Train, track and log the best model; see the module docstring.

    Args:
        config: an :class:`AdvancedTrainingConfig`, a mapping of its keys, or None (defaults).
        data: a data set from :mod:`agentnn.data` (an interaction log; digits too for
            ``mode="classifier"``).
        tracker: an ``ExperimentTracker``; default: experiment ``advanced_training`` on the
            resolved store.
        register_as: register the best model under this name (e.g. ``agent-router``).
        resume_from: a checkpoint file or folder (``TrainResult.checkpoint_dir``); continues
            that run (same run id, epochs and steps continue) with the same config.
        on_epoch: ``on_epoch(epoch, metrics)`` after each epoch (progress bars).

    Raises:
        TrainerConfigError: a bad config value, a too-small data set or mismatched
            dimensions, before any run is created.
    """
    config = check_config(config, AdvancedTrainingConfig)
    prepared = prepare_data(data, config)
    task = loop.SupervisedTask(
        experiment=experiment_for(EXPERIMENT, data.params),
        builder=BUILDER,
        spec=model_spec(config, prepared),
        splits=prepared.splits,
        loss=lambda model, batch: compute_loss(model, batch, config),
        evaluate=lambda model, split: evaluate(model, split, config, prepared.metadata),
        data_params=data.params,
        metadata=prepared.metadata,
        tags={"mode": config.mode},
    )
    return loop.fit(task, config, build_model, tracker=tracker, register_as=register_as,
                      resume_from=resume_from, on_epoch=on_epoch)
