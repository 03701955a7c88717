"""What every trainer shares: seeding, config checks, timing, early stopping, LR schedules,
atomic checkpoints with resume, data params and the result of a training run.

A trainer module uses these pieces in the same order, so all five read alike::

    config = check_config(config, MyConfig)            # 1. bad values raise before any run
    require_samples(len(train_x), MIN_TRAIN_SAMPLES)   #    ...and so do too-small data sets
    checkpoint = load_checkpoint(resume_from)          # 2. resume: same config, same run id
    seed_everything(config.seed)                       # 3. same seed, same metrics on CPU
    with tracker.start_run(run_id=...) as run:         # 4. one run in the trainer's experiment
        run.log_params(flatten_config(config))         #    the whole config, flattened
        log_data_params(run, data_params)              #    size, content hash, featuriser
        for epoch in range(start_epoch, config.epochs + 1):
            with EpochTimer(n_samples) as timer:       # 5. epoch time and samples/s
                ...                                    #    run.log_metrics(..., step=global_step)
            run.log_metrics({..., **timer.metrics(), "lr": current_lr(optimizer)}, step=epoch)
            checkpoints.save(Checkpoint(...))          # 6. atomic, keeps the last N
            if stopper.update(val_loss): ...           # 7. early stopping
        logged = log_best_model(...)                   # 8. safe format, optional registration
    return TrainResult(...)

The supervised trainers get all of this from :func:`agentnn.nn_models.loop.fit`.

Metric names are shared too: ``train_loss``/``val_loss`` and ``train_<m>``/``val_<m>`` per epoch
at ``step=epoch`` (1-based), ``step_loss`` per optimiser step at ``step=global_step``, plus
``lr``, ``epoch_time_s`` and ``samples_per_s`` per epoch.

Nothing here imports torch or MLflow at module level; the CLI imports trainer modules only
inside command bodies, but keeping this module light costs nothing.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from agentnn.errors import TrainerConfigError

# --- shared defaults ---------------------------------------------------------------------------
DEFAULT_KEEP_CHECKPOINTS = 2  # the last N checkpoints survive; older ones are deleted
CHECKPOINT_PREFIX = "epoch-"  # checkpoint files are epoch-0003.pt, sortable by name
CHECKPOINT_SUFFIX = ".pt"
DEFAULT_CHECKPOINT_ROOT = "checkpoints"  # under the working directory: <root>/<experiment>/<run id>
SCHEDULERS = ("constant", "cosine", "step", "plateau")
MODEL_PIP_REQUIREMENTS = ("torch", "safetensors", "numpy")  # never inferred: inference takes ~11 s

SHARED_RENAMES = {  # old config name -> the one name every trainer uses now
    "lr": "learning_rate", "max_grad_norm": "grad_clip", "checkpoint_root": "checkpoint_dir",
    "hidden_sizes": "hidden_dims", "hidden": "hidden_dims", "n_classes": "num_classes",
    "min_lr": "min_learning_rate",
}

EpochCallback = Callable[[int, dict[str, float]], None]
"""``on_epoch(epoch, metrics)``: called after each epoch (1-based) with that epoch's metrics."""

ConfigT = TypeVar("ConfigT")


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


def batch_order(n_samples: int, *, seed: int, epoch: int, shuffle: bool = True) -> Any:
    """The sample order of one epoch, a function of (seed, epoch) only.

    Why not the global RNG: a resumed run must see the same batches as an uninterrupted one,
    so the order may not depend on how many random numbers earlier epochs drew.
    """
    import torch

    if not shuffle:
        return torch.arange(n_samples)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n_samples, generator=generator)


def iterate_batches(order: Any, batch_size: int) -> Iterator[Any]:
    """Index tensors of ``batch_size`` (the last one may be smaller) in the given order."""
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


# --- configs -----------------------------------------------------------------------------------


def config_from_mapping(config_class: type[ConfigT], values: Mapping[str, Any] | None) -> ConfigT:
    """Build a trainer config dataclass from a plain mapping (a YAML file, CLI overrides).

    Unknown keys raise :class:`TrainerConfigError` naming them and the keys that exist,
    instead of being ignored: a typo in a config file should not silently train the default.
    """
    values = dict(values or {})
    known = {item.name: item for item in dataclasses.fields(config_class)}  # type: ignore[arg-type]
    values = accept_old_names(config_class, values, known)
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise TrainerConfigError(
            f"unknown {config_class.__name__} key(s) {', '.join(unknown)}; "
            f"known keys: {', '.join(known)}"
        )
    return config_class(**values)


def accept_old_names(config_class: type, values: dict[str, Any],
                     known: Mapping[str, Any]) -> dict[str, Any]:
    """Old config names mapped to the shared vocabulary, each with a DeprecationWarning.

    Why: config files written for the first trainers (``lr``, ``max_grad_norm``,
    ``checkpoint_root``, ``n_classes``...) keep working while users move to one vocabulary.
    A class lists its renames in ``RENAMED`` (old -> new) and may rewrite values whose
    meaning changed in a ``legacy(values)`` classmethod.
    """
    import warnings

    legacy = getattr(config_class, "legacy", None)
    if callable(legacy):
        values = legacy(dict(values))
    for old, new in {**SHARED_RENAMES, **getattr(config_class, "RENAMED", {})}.items():
        if old in values and old not in known and new in known:
            value = values.pop(old)
            if new in values:
                raise TrainerConfigError(f"config gives both {old!r} (deprecated) and {new!r}; "
                                         f"keep only {new!r}")
            warnings.warn(f"config key {old!r} is deprecated; use {new!r}",
                          DeprecationWarning, stacklevel=4)
            values[new] = value
    return values


def check_config(config: Any, config_class: type[ConfigT]) -> ConfigT:
    """Accept a config dataclass, a mapping or None (defaults); validate and return it.

    Validation calls the config's ``validate()`` method, which uses the ``check_*`` helpers
    below, so every bad value raises before a run is created.
    """
    if config is None:
        config = config_class()
    elif isinstance(config, Mapping):
        config = config_from_mapping(config_class, config)
    elif not isinstance(config, config_class):
        raise TrainerConfigError(
            f"config must be a {config_class.__name__} or a mapping, got {type(config).__name__}"
        )
    _check_field_types(config)
    validate = getattr(config, "validate", None)
    if callable(validate):
        validate()
    return config


def _check_field_types(config: Any) -> None:
    """Reject a string where a number belongs (YAML ``lr: 1e-3`` is a str), naming the key."""
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        expected = item.type if isinstance(item.type, str) else getattr(item.type, "__name__", "")
        if expected in ("int", "float") and (isinstance(value, bool) or not isinstance(
            value, (int, float)
        )):
            raise TrainerConfigError(f"{item.name} must be a number, got {value!r}")
        if expected == "int" and isinstance(value, float):
            if not value.is_integer():
                raise TrainerConfigError(f"{item.name} must be a whole number, got {value!r}")
            setattr(config, item.name, int(value))
        if expected == "float" and isinstance(value, int):
            setattr(config, item.name, float(value))
        if expected == "bool" and not isinstance(value, bool):
            raise TrainerConfigError(f"{item.name} must be true or false, got {value!r}")


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    """Raise :class:`TrainerConfigError` unless ``value`` is > 0 (or >= 0)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        raise TrainerConfigError(f"{name} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise TrainerConfigError(f"{name} must be {bound}, got {value!r}")


def check_range(
    name: str, value: float, low: float, high: float, *, high_open: bool = False
) -> None:
    """Raise :class:`TrainerConfigError` unless ``low <= value <= high`` (or ``< high``)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        raise TrainerConfigError(f"{name} must be a number, got {value!r}")
    too_high = value >= high if high_open else value > high
    if value < low or too_high:
        bracket = ")" if high_open else "]"
        raise TrainerConfigError(f"{name} must be in [{low}, {high}{bracket}, got {value!r}")


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    """Raise :class:`TrainerConfigError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise TrainerConfigError(
            f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}"
        )


def require_samples(n_samples: int, minimum: int, what: str = "training set") -> None:
    """Raise :class:`TrainerConfigError` for an empty or too-small data set."""
    if n_samples == 0:
        raise TrainerConfigError(f"the {what} is empty; a trainer needs at least {minimum} samples")
    if n_samples < minimum:
        raise TrainerConfigError(
            f"the {what} has {n_samples} samples; this trainer needs at least {minimum}"
        )


def require_features(actual: int, expected: int, what: str = "input features") -> None:
    """Raise :class:`TrainerConfigError` when data and model disagree about a dimension."""
    if actual != expected:
        raise TrainerConfigError(f"{what}: the data has {actual}, the model expects {expected}")


def flatten_config(config: Any, prefix: str = "") -> dict[str, Any]:
    """A dataclass or nested mapping as flat ``{"a.b": value}`` params, for ``log_params``.

    Lists and tuples become comma-joined strings; ``None`` becomes ``"None"``, so every key
    is logged and a missing value is visible in the MLflow UI.
    """
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    flat: dict[str, Any] = {}
    for key, value in dict(config).items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) or (
            dataclasses.is_dataclass(value) and not isinstance(value, type)
        ):
            flat.update(flatten_config(value, prefix=f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = ",".join(str(item) for item in value)
        elif value is None:
            flat[name] = "None"
        else:
            flat[name] = value
    return flat


def config_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a plain, JSON-able dict (what checkpoints and model specs store)."""
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)


def log_data_params(run: Any, data_params: Mapping[str, Any]) -> None:
    """Log the data set's params (size, content hash, split, featuriser settings).

    ``data_params`` is the data set's ``params`` (``data.*`` and ``featurizer.*`` keys, named
    by the data layer); nested mappings are flattened to dotted keys.
    """
    run.log_params(flatten_config(data_params))


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

    def state_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def make_scheduler(
    optimizer: Any,
    kind: str,
    *,
    epochs: int,
    min_lr: float = 0.0,
    step_size: int = 10,
    gamma: float = 0.5,
    patience: int = 2,
) -> Any:
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


def step_scheduler(scheduler: Any, val_loss: float) -> None:
    """Advance a scheduler by one epoch; ``plateau`` needs the validation loss."""
    import torch

    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(val_loss)
    else:
        scheduler.step()


def current_lr(optimizer: Any) -> float:
    """The learning rate of the first parameter group (what the ``lr`` metric logs)."""
    return float(optimizer.param_groups[0]["lr"])


# --- checkpoints -------------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """Everything needed to continue a run where it stopped, in the same MLflow run.

    Stored with ``torch.save`` and read with ``weights_only=True``: only tensors, numbers,
    strings, lists and dicts, so loading a checkpoint never runs code.
    """

    config: dict[str, Any]
    """The trainer config as a plain dict; resume refuses a different one."""
    model_state: dict[str, Any]
    optimizer_state: dict[str, Any]
    epoch: int
    """The last completed epoch (1-based); training continues at ``epoch + 1``."""
    global_step: int
    """Optimiser steps so far; per-step metrics continue from here."""
    run_id: str
    """The MLflow run to reopen with ``tracker.start_run(run_id=...)``."""
    scheduler_state: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    """Trainer-specific state: early stopping, best weights, best metrics, RNG state."""


class CheckpointManager:
    """Writes checkpoints atomically into one folder and keeps the last ``keep_last``.

    Atomic: each file is written as ``.tmp`` then moved into place with ``os.replace``, so a
    crash mid-write leaves the previous checkpoint intact and never a half-written one.
    """

    def __init__(
        self, directory: str | os.PathLike[str], keep_last: int = DEFAULT_KEEP_CHECKPOINTS
    ) -> None:
        check_positive("keep_checkpoints", keep_last)
        self.directory = Path(directory)
        self.keep_last = int(keep_last)

    def save(self, checkpoint: Checkpoint) -> Path:
        """Write ``epoch-NNNN.pt`` and delete checkpoints beyond the last ``keep_last``."""
        import torch

        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{CHECKPOINT_PREFIX}{checkpoint.epoch:04d}{CHECKPOINT_SUFFIX}"
        tmp = path.with_name(path.name + ".tmp")
        torch.save(dataclasses.asdict(checkpoint), tmp)
        os.replace(tmp, path)
        for old in list_checkpoints(self.directory)[:-self.keep_last]:
            old.unlink(missing_ok=True)
        return path


def checkpoint_dir(root: str | None, experiment: str, run_id: str) -> Path:
    """``<root>/<experiment>/<run id>``; root defaults to ``./checkpoints``."""
    return Path(root or DEFAULT_CHECKPOINT_ROOT) / experiment / run_id


def list_checkpoints(directory: str | os.PathLike[str]) -> list[Path]:
    """Checkpoint files of one folder, oldest epoch first."""
    pattern = re.compile(rf"^{re.escape(CHECKPOINT_PREFIX)}\d+{re.escape(CHECKPOINT_SUFFIX)}$")
    folder = Path(directory)
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if pattern.match(path.name))


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint file, or the latest one in a folder, without unpickling code."""
    import torch

    target = Path(path)
    if target.is_dir():
        found = list_checkpoints(target)
        if not found:
            raise TrainerConfigError(f"no checkpoint ({CHECKPOINT_PREFIX}NNNN.pt) in {target}")
        target = found[-1]
    if not target.is_file():
        raise TrainerConfigError(f"checkpoint {target} does not exist")
    try:
        state = torch.load(target, map_location="cpu", weights_only=True)
        return Checkpoint(**state)
    except Exception as error:  # a truncated file, a foreign pickle, a missing key
        raise TrainerConfigError(f"checkpoint {target} cannot be read: {error}") from None


def check_resume_config(checkpoint: Checkpoint, config: Any) -> None:
    """Refuse to resume with a config other than the one the run started with.

    Why: params are immutable in MLflow and the run's params must describe its metrics.
    """
    current = config_dict(config)
    changed = sorted(
        key for key in set(current) | set(checkpoint.config)
        if current.get(key) != checkpoint.config.get(key)
    )
    if changed:
        details = ", ".join(
            f"{key}: {checkpoint.config.get(key)!r} -> {current.get(key)!r}" for key in changed
        )
        raise TrainerConfigError(
            f"cannot resume run {checkpoint.run_id} with a different config ({details}); "
            "resume with the config it started with"
        )


# --- results and models ------------------------------------------------------------------------


@dataclass
class TrainResult:
    """What ``train()`` returns: where the run is and what it achieved."""

    run_id: str
    best_metrics: dict[str, float]
    """The epoch metrics at the best epoch (lowest ``val_loss``)."""
    model_uri: str | None
    """``models:/<model id>`` of the logged best model."""
    registered_version: str | None = None
    """The registry version when ``register_as`` was given."""
    epochs_run: int = 0
    """Epochs completed in the run, including those before a resume."""
    experiment_id: str = ""
    best_epoch: int = 0
    checkpoint_dir: str | None = None
    """Pass this as ``resume_from`` to continue the run."""
    stopped_early: bool = False
    study: str | None = None
    """The Optuna study of an architecture search."""


def log_best_model(
    module: Any,
    *,
    builder: str,
    config: dict[str, Any],
    input_example: Any,
    register_as: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> tuple[str | None, str | None]:
    """Log ``module`` in the safe model format into the active run; (model_uri, version).

    The model format module rebuilds the network with ``builder(config)`` from the logged
    JSON, so ``config`` must hold everything the architecture needs.
    """
    from agentnn.mlflow_integration.model_format import log_torch_model

    module.eval()
    logged = log_torch_model(
        module,
        builder=builder,
        config=config,
        name="model",
        input_example=input_example,
        register_as=register_as,
        metadata=metadata,
    )
    version = getattr(logged, "registered_version", None)
    return logged.model_uri, (str(version) if version is not None else None)


def plain_mlp(n_features: int, hidden_sizes: list[int], n_outputs: int, dropout: float) -> Any:
    """Linear, ReLU and dropout per hidden width, then a linear head: the routers' MLP.

    Its layer names are part of saved weights; keep the layout as it is.
    """
    from torch import nn

    sizes = [n_features, *hidden_sizes]
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU(), nn.Dropout(dropout)]
    layers.append(nn.Linear(sizes[-1], n_outputs))
    return nn.Sequential(*layers)


def copy_state(module: Any) -> dict[str, Any]:
    """A detached copy of a module's weights (to keep the best epoch's model)."""
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


def open_tracker(tracker: Any, experiment: str) -> Any:
    """The given tracker, or a new one on the trainer's own experiment."""
    if tracker is not None:
        return tracker
    from agentnn.mlflow_integration import ExperimentTracker

    return ExperimentTracker(experiment)
