"""Architecture search for the routing classifier, experiment ``architecture_optimization``.

Why a search: the best depth, width, dropout and activation for a router depend on the data
(how many agents, how noisy the logs are), and guessing them wastes training runs. This trainer
samples candidate architectures, trains each in its own nested child run under one parent run,
and keeps the winner. While a candidate trains it is reshaped when validation stalls: it grows
(wider hidden layers) when it underfits and shrinks (drops its weakest units) when it overfits.
Both reshapes preserve what the network has learned, and each candidate keeps its own optimiser
state across them, sliced or padded to the new shape.

The parent run logs the leaderboard (``leaderboard.json`` and ``leaderboard.csv``), the best
architecture (``best_architecture.json`` and ``best_*`` params) and the best weights as a model
in the safe format.

Run example::

    from agentnn.data import load_dataset            # digits or an interaction log
    from agentnn.nn_models import dynamic_architecture as da

    config = da.ArchitectureSearchConfig(n_candidates=4, epochs=6, seed=7)
    result = da.train(config, load_dataset("digits"), register_as="agent-router")
    print(result.run_id, result.best_metrics["val_acc"])
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentnn.errors import TrainerConfigError
from agentnn.nn_models.common import (
    Checkpoint,
    CheckpointManager,
    EarlyStopping,
    EpochCallback,
    EpochTimer,
    TrainResult,
    batch_order,
    check_choice,
    check_config,
    check_positive,
    check_range,
    check_resume_config,
    checkpoint_dir,
    config_dict,
    copy_state,
    flatten_config,
    iterate_batches,
    load_checkpoint,
    log_best_model,
    log_data_params,
    open_tracker,
    seed_everything,
)
from agentnn.nn_models.training_infrastructure import prepare_data

EXPERIMENT = "architecture_optimization"
BUILDER = "agentnn.nn_models.dynamic_architecture:build_model"
ACTIVATION_NAMES = ("relu", "gelu", "tanh", "silu")
LEADERBOARD_FIELDS = ("rank", "candidate", "run_id", "val_loss", "val_acc", "depth",
                      "hidden_sizes", "final_hidden_sizes", "dropout", "activation", "n_params",
                      "reshapes")


@dataclass
class ArchitectureSearchConfig:
    """The search space and how each candidate trains; every field is logged as a param."""

    # --- search space ---------------------------------------------------------------------
    n_candidates: int = 6  # architectures sampled from the space below (without repeats)
    depths: list[int] = field(default_factory=lambda: [1, 2, 3])
    widths: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    """Choices for each hidden layer's width; layers draw independently."""
    dropouts: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.3])
    activations: list[str] = field(default_factory=lambda: ["relu", "gelu", "tanh"])
    # --- training of one candidate --------------------------------------------------------
    epochs: int = 8  # per candidate
    batch_size: int = 64
    lr: float = 3e-3  # AdamW, one optimiser per candidate
    weight_decay: float = 0.01
    # --- reshaping when validation stalls -------------------------------------------------
    stall_patience: int = 2  # epochs without a lower val_loss before the network is reshaped
    min_delta: float = 1e-3  # a smaller val_loss improvement counts as a stall
    overfit_ratio: float = 1.5  # val_loss / train_loss above this: shrink; otherwise grow
    grow_factor: float = 2.0  # widths multiply by this when growing (capped at max_width)
    shrink_factor: float = 0.5  # ... and by this when shrinking (floored at min_width)
    min_width: int = 8
    max_width: int = 256
    max_reshapes: int = 2  # per candidate; 0 disables reshaping
    # --- reproducibility and resume -------------------------------------------------------
    seed: int = 0
    checkpoint_root: str | None = None  # default ./checkpoints/<experiment>/<parent run id>

    def validate(self) -> None:
        check_positive("n_candidates", self.n_candidates)
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
        for name in ("epochs", "batch_size", "min_width", "max_width"):
            check_positive(name, getattr(self, name))
        check_positive("lr", self.lr)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_positive("stall_patience", self.stall_patience)
        check_positive("min_delta", self.min_delta, allow_zero=True)
        check_positive("max_reshapes", self.max_reshapes, allow_zero=True)
        check_range("overfit_ratio", self.overfit_ratio, 1.0, math.inf)
        check_range("grow_factor", self.grow_factor, 1.0, 16.0)
        check_range("shrink_factor", self.shrink_factor, 0.05, 1.0)
        if self.min_width > self.max_width:
            raise TrainerConfigError(
                f"min_width ({self.min_width}) must not exceed max_width ({self.max_width})"
            )


def _check_int_list(name: str, values: list[int]) -> None:
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in values):
        raise TrainerConfigError(f"{name} must be a non-empty list of positive integers, "
                                 f"got {values!r}")


# --- the network and its reshaping -------------------------------------------------------------


def build_model(config: dict[str, Any]) -> Any:
    """A :class:`MorphableMLP` from its JSON spec (what the logged model stores)."""
    return _mlp_class()(
        n_features=int(config["n_features"]),
        hidden_sizes=[int(width) for width in config["hidden_sizes"]],
        n_classes=int(config["n_classes"]),
        activation=str(config["activation"]),
        dropout=float(config["dropout"]),
    )


def _mlp_class() -> Any:
    """The module class, defined on first use so that importing this module needs no torch."""
    global _MLP
    if _MLP is None:
        from torch import nn

        activations = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}

        class MorphableMLP(nn.Module):
            """An MLP whose hidden widths can change without forgetting what it learned."""

            def __init__(self, n_features: int, hidden_sizes: list[int], n_classes: int,
                         activation: str = "relu", dropout: float = 0.0) -> None:
                super().__init__()
                sizes = [n_features, *hidden_sizes]
                self.hidden = nn.ModuleList(
                    nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])
                )
                self.head = nn.Linear(sizes[-1], n_classes)
                self.act = activations[activation]()
                self.drop = nn.Dropout(dropout)

            @property
            def hidden_sizes(self) -> list[int]:
                return [layer.out_features for layer in self.hidden]

            def forward(self, x: Any) -> Any:
                for layer in self.hidden:
                    x = self.drop(self.act(layer(x)))
                return self.head(x)

        _MLP = MorphableMLP
    return _MLP


_MLP: Any = None


def _unit_importance(model: Any, layer_index: int) -> Any:
    """How much a hidden unit matters: the norm of its incoming times its outgoing weights."""
    layers = [*model.hidden, model.head]
    incoming = layers[layer_index].weight.detach().norm(dim=1)
    outgoing = layers[layer_index + 1].weight.detach().norm(dim=0)
    return incoming * outgoing


def _kept_units(model: Any, new_sizes: list[int]) -> list[Any]:
    """Per hidden layer, the units that survive: all when growing, the strongest when shrinking."""
    import torch

    kept = []
    for index, (old, new) in enumerate(zip(model.hidden_sizes, new_sizes)):
        if new >= old:
            kept.append(torch.arange(old))
        else:
            kept.append(torch.topk(_unit_importance(model, index), new).indices.sort().values)
    return kept


def _resize(tensor: Any, dim: int, keep: Any, size: int, init_scale: float | None,
            generator: Any) -> Any:
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


def _reshape_plan(model: Any, new_sizes: list[int]) -> dict[str, list[tuple[int, Any, int]]]:
    """Per parameter name, the (dim, kept units, new size) resizes to apply, in order."""
    kept = _kept_units(model, new_sizes)
    names = [f"hidden.{index}" for index in range(len(new_sizes))] + ["head"]
    plan: dict[str, list[tuple[int, Any, int]]] = {}
    for index, name in enumerate(names):
        incoming = (1, kept[index - 1], new_sizes[index - 1]) if index > 0 else None
        outgoing = (0, kept[index], new_sizes[index]) if index < len(new_sizes) else None
        plan[f"{name}.weight"] = [step for step in (incoming, outgoing) if step is not None]
        plan[f"{name}.bias"] = [outgoing] if outgoing is not None else []
    return plan


def reshape(model: Any, optimizer: Any, new_sizes: list[int], spec: dict[str, Any],
            make_optimizer: Callable[[Any], Any], generator: Any) -> tuple[Any, Any]:
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
    new_model = build_model({**spec, "hidden_sizes": list(new_sizes)})
    new_model.load_state_dict(new_weights)
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


def sample_architectures(config: ArchitectureSearchConfig) -> list[dict[str, Any]]:
    """``n_candidates`` distinct architectures drawn from the space, a function of the seed.

    Fewer come back when the space has fewer distinct members than ``n_candidates``.
    """
    rng = random.Random(config.seed)
    seen: set[str] = set()
    chosen: list[dict[str, Any]] = []
    attempts = 0
    while len(chosen) < config.n_candidates and attempts < config.n_candidates * 50:
        attempts += 1
        depth = rng.choice(config.depths)
        architecture = {
            "hidden_sizes": [rng.choice(config.widths) for _ in range(depth)],
            "dropout": rng.choice(config.dropouts),
            "activation": rng.choice(config.activations),
        }
        key = json.dumps(architecture, sort_keys=True)
        if key not in seen:
            seen.add(key)
            chosen.append(architecture)
    return chosen


# --- one candidate -----------------------------------------------------------------------------


@dataclass
class CandidateOutcome:
    """What one candidate achieved; the leaderboard row plus its best weights."""

    row: dict[str, Any]
    best_state: dict[str, Any]
    best_spec: dict[str, Any]
    best_metrics: dict[str, float]
    best_epoch: int


def _make_optimizer(config: ArchitectureSearchConfig) -> Callable[[Any], Any]:
    import torch

    def make(model: Any) -> Any:
        return torch.optim.AdamW(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)

    return make


def _fit_epoch(model: Any, optimizer: Any, x: Any, y: Any, config: ArchitectureSearchConfig,
               seed: int, epoch: int) -> tuple[float, float]:
    """One pass over the training split; (mean loss, accuracy)."""
    import torch
    import torch.nn.functional as F

    model.train()
    loss_sum = torch.zeros(())
    correct = torch.zeros((), dtype=torch.long)
    for batch in iterate_batches(batch_order(len(y), seed=seed, epoch=epoch), config.batch_size):
        logits = model(x[batch])
        loss = F.cross_entropy(logits, y[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * len(batch)
        correct += (logits.detach().argmax(dim=1) == y[batch]).sum()
    return float(loss_sum) / len(y), float(correct) / len(y)


def _score(model: Any, x: Any, y: Any) -> tuple[float, float]:
    """(mean loss, accuracy) of a split, without gradients."""
    import torch
    import torch.nn.functional as F

    model.eval()
    with torch.no_grad():
        logits = model(x)
        return float(F.cross_entropy(logits, y)), float((logits.argmax(dim=1) == y).float().mean())


def _n_params(model: Any) -> int:
    return sum(param.numel() for param in model.parameters())


def train_candidate(
    number: int, architecture: dict[str, Any], data: Any, config: ArchitectureSearchConfig,
    tracker: Any, on_epoch: EpochCallback | None, epochs_before: int,
) -> CandidateOutcome:
    """Train one architecture in its own nested child run, reshaping it when it stalls."""
    import torch

    candidate_seed = config.seed * 1_000 + number
    torch.manual_seed(candidate_seed)
    generator = torch.Generator().manual_seed(candidate_seed)
    spec = {"n_features": int(data.train.x.shape[1]), "n_classes": data.n_classes,
            **architecture, "hidden_sizes": list(architecture["hidden_sizes"])}
    make_optimizer = _make_optimizer(config)
    model = build_model(spec)
    optimizer = make_optimizer(model)
    watch = EarlyStopping(patience=0, min_delta=config.min_delta)
    best_state, best_spec, best_metrics = copy_state(model), dict(spec), {}
    reshapes: list[str] = []
    with tracker.start_run(run_name=f"candidate-{number}", nested=True,
                           tags={"agentnn.candidate": number}) as child:
        child.log_params({**flatten_config(architecture), "depth": len(spec["hidden_sizes"]),
                          "candidate": number, "epochs": config.epochs, "lr": config.lr,
                          "batch_size": config.batch_size, "seed": candidate_seed})
        for epoch in range(1, config.epochs + 1):
            lr = float(optimizer.param_groups[0]["lr"])
            with EpochTimer(len(data.train.y)) as timer:
                train_loss, train_acc = _fit_epoch(model, optimizer, data.train.x, data.train.y,
                                                   config, candidate_seed, epoch)
            val_loss, val_acc = _score(model, data.val.x, data.val.y)
            metrics = {"train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss,
                       "val_acc": val_acc, "lr": lr, "n_params": float(_n_params(model)),
                       "hidden_units": float(sum(spec["hidden_sizes"])), **timer.metrics()}
            child.log_metrics(metrics, step=epoch)
            if on_epoch is not None:
                on_epoch(epochs_before + epoch, {**metrics, "candidate": float(number)})
            if watch.update(val_loss, epoch):
                best_state, best_spec, best_metrics = copy_state(model), dict(spec), metrics
            elif watch.bad_epochs >= config.stall_patience and len(reshapes) < config.max_reshapes:
                action, widths = next_widths(spec["hidden_sizes"], train_loss, val_loss, config)
                if action:
                    model, optimizer = reshape(model, optimizer, widths, spec, make_optimizer,
                                               generator)
                    spec = {**spec, "hidden_sizes": widths}
                    reshapes.append(f"{epoch}:{action}:{'x'.join(map(str, widths))}")
                    watch.bad_epochs = 0
        child.set_tags({"agentnn.final_hidden_sizes": ",".join(map(str, spec["hidden_sizes"])),
                        "agentnn.reshapes": ";".join(reshapes) or "none"})
        run_id = child.run_id
    row = {
        "candidate": number, "run_id": run_id, "val_loss": best_metrics["val_loss"],
        "val_acc": best_metrics["val_acc"], "depth": len(architecture["hidden_sizes"]),
        "hidden_sizes": list(architecture["hidden_sizes"]),
        "final_hidden_sizes": list(best_spec["hidden_sizes"]),
        "dropout": architecture["dropout"], "activation": architecture["activation"],
        "n_params": int(best_metrics["n_params"]), "reshapes": len(reshapes),
    }
    return CandidateOutcome(row, best_state, best_spec, best_metrics, watch.best_epoch)


# --- the leaderboard ---------------------------------------------------------------------------


def rank_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by validation loss (then fewer parameters), numbered from 1."""
    ordered = sorted(rows, key=lambda row: (row["val_loss"], row["n_params"], row["candidate"]))
    return [{"rank": place, **row} for place, row in enumerate(ordered, start=1)]


def leaderboard_csv(rows: list[dict[str, Any]]) -> str:
    """The ranked leaderboard as CSV text (lists joined with ``x``: ``64x32``)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LEADERBOARD_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "x".join(map(str, value)) if isinstance(value, list) else value
                         for key, value in row.items()})
    return buffer.getvalue()


def _log_leaderboard(run: Any, rows: list[dict[str, Any]], best_spec: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(prefix="agentnn-search-") as tmp:
        folder = Path(tmp)
        (folder / "leaderboard.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
        (folder / "leaderboard.csv").write_text(leaderboard_csv(rows), encoding="utf-8")
        (folder / "best_architecture.json").write_text(json.dumps(best_spec, indent=2),
                                                       encoding="utf-8")
        for name in ("leaderboard.json", "leaderboard.csv", "best_architecture.json"):
            run.log_artifact(str(folder / name))


# --- the search --------------------------------------------------------------------------------


def train(
    config: ArchitectureSearchConfig | dict[str, Any] | None,
    data: Any,
    *,
    tracker: Any = None,
    register_as: str | None = None,
    resume_from: str | os.PathLike[str] | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Search architectures under one parent run; log the leaderboard and the best model.

    After each finished candidate a checkpoint holds the leaderboard so far and the best
    weights; ``resume_from`` (that checkpoint or its folder) reopens the same parent run and
    trains only the candidates that had not finished. ``on_epoch`` sees every candidate
    epoch, numbered across the whole search. Bad config or data raise
    :class:`TrainerConfigError` before any run exists.
    """
    config = check_config(config, ArchitectureSearchConfig)
    prepared = prepare_data(data)
    architectures = sample_architectures(config)
    checkpoint = load_checkpoint(resume_from) if resume_from is not None else None
    if checkpoint is not None:
        check_resume_config(checkpoint, config)
    tracker = open_tracker(tracker, EXPERIMENT)
    seed_everything(config.seed)
    rows: list[dict[str, Any]] = []
    best: CandidateOutcome | None = None
    if checkpoint is not None:
        rows = [dict(row) for row in checkpoint.extra["rows"]]
        best = CandidateOutcome(
            row=dict(checkpoint.extra["best_row"]), best_state=checkpoint.model_state,
            best_spec=dict(checkpoint.extra["best_spec"]),
            best_metrics=dict(checkpoint.extra["best_metrics"]),
            best_epoch=int(checkpoint.extra["best_epoch"]),
        )
    with tracker.start_run(run_id=checkpoint.run_id if checkpoint else None) as run:
        saver = CheckpointManager(checkpoint_dir(config.checkpoint_root, EXPERIMENT, run.run_id),
                                  keep_last=1)
        if checkpoint is None:
            run.log_params({**flatten_config(config), "candidates_sampled": len(architectures)})
            log_data_params(run, prepared.params)
        for number in range(len(rows) + 1, len(architectures) + 1):
            outcome = train_candidate(number, architectures[number - 1], prepared, config,
                                      tracker, on_epoch, (number - 1) * config.epochs)
            rows.append(outcome.row)
            if best is None or outcome.row["val_loss"] < best.row["val_loss"]:
                best = outcome
            run.log_metrics({"candidate_val_loss": outcome.row["val_loss"],
                             "candidate_val_acc": outcome.row["val_acc"],
                             "best_val_loss": best.row["val_loss"],
                             "best_val_acc": best.row["val_acc"]}, step=number)
            saver.save(_search_checkpoint(config, run.run_id, number, rows, best))
        assert best is not None  # sample_architectures returns at least one
        return _finish(run, tracker, config, prepared, rows, best, register_as, saver)


def _search_checkpoint(config: ArchitectureSearchConfig, run_id: str, finished: int,
                       rows: list[dict[str, Any]], best: CandidateOutcome) -> Checkpoint:
    """The search after ``finished`` candidates; ``epoch`` counts finished candidates."""
    return Checkpoint(
        config=config_dict(config), model_state=best.best_state, optimizer_state={},
        epoch=finished, global_step=finished * config.epochs, run_id=run_id,
        extra={"rows": rows, "best_row": best.row, "best_spec": best.best_spec,
               "best_metrics": best.best_metrics, "best_epoch": best.best_epoch},
    )


def _finish(run: Any, tracker: Any, config: ArchitectureSearchConfig, data: Any,
            rows: list[dict[str, Any]], best: CandidateOutcome, register_as: str | None,
            saver: CheckpointManager) -> TrainResult:
    """Leaderboard, best architecture, test score and the best model, all on the parent run."""
    ranked = rank_rows(rows)
    _log_leaderboard(run, ranked, best.best_spec)
    model = build_model(best.best_spec)
    model.load_state_dict(best.best_state)
    test_loss, test_acc = _score(model, data.test.x, data.test.y)
    best_metrics = {**best.best_metrics, "test_loss": test_loss, "test_acc": test_acc}
    run.log_metrics({"test_loss": test_loss, "test_acc": test_acc}, step=len(rows))
    run.set_tags({"agentnn.best_candidate": best.row["candidate"],
                  "agentnn.best_child_run_id": best.row["run_id"]})
    run.log_params({"best_candidate": best.row["candidate"],
                    "best_hidden_sizes": ",".join(map(str, best.best_spec["hidden_sizes"])),
                    "best_dropout": best.best_spec["dropout"],
                    "best_activation": best.best_spec["activation"]})
    model_uri, version = log_best_model(
        model, builder=BUILDER, config=best.best_spec, input_example=data.val.x[:2].numpy(),
        register_as=register_as, metadata={**data.metadata, "leaderboard_rank": 1},
    )
    return TrainResult(
        run_id=run.run_id, best_metrics=best_metrics, model_uri=model_uri,
        registered_version=version, epochs_run=len(rows) * config.epochs,
        experiment_id=tracker.experiment_id, best_epoch=best.best_epoch,
        checkpoint_dir=str(saver.directory),
    )
