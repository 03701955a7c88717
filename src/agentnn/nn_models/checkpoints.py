"""Atomic checkpoints: write, keep the last N, read back without unpickling code, resume checks.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from agentnn.errors import TrainerConfigError
from agentnn.nn_models.configs import JSONDict, check_positive, config_dict

if TYPE_CHECKING:
    import torch

DEFAULT_KEEP_CHECKPOINTS = 2  # the last N checkpoints survive; older ones are deleted
CHECKPOINT_PREFIX = "epoch-"  # checkpoint files are epoch-0003.pt, sortable by name
CHECKPOINT_SUFFIX = ".pt"
DEFAULT_CHECKPOINT_ROOT = "checkpoints"  # under the working directory: <root>/<experiment>/<run id>

SavedState: TypeAlias = dict[str, Any]
"""An optimiser's, scheduler's or trainer's state as ``torch.load(weights_only=True)`` returns
it: nested dicts and lists of tensors, numbers and strings whose shape each owner decides."""


# --- checkpoints -------------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """Everything needed to continue a run where it stopped, in the same MLflow run.

    Stored with ``torch.save`` and read with ``weights_only=True``: only tensors, numbers,
    strings, lists and dicts, so loading a checkpoint never runs code.
    """

    config: JSONDict
    """The trainer config as a plain dict; resume refuses a different one."""
    model_state: dict[str, torch.Tensor]
    optimizer_state: SavedState
    epoch: int
    """The last completed epoch (1-based); training continues at ``epoch + 1``."""
    global_step: int
    """Optimiser steps so far; per-step metrics continue from here."""
    run_id: str
    """The MLflow run to reopen with ``tracker.start_run(run_id=...)``."""
    scheduler_state: SavedState = field(default_factory=dict)
    extra: SavedState = field(default_factory=dict)
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
        # field by field, not dataclasses.asdict: that deep-copies every tensor first, which
        # doubled the time of a save
        fields = {item.name: getattr(checkpoint, item.name)
                  for item in dataclasses.fields(checkpoint)}
        torch.save(fields, tmp)
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


def check_resume_config(checkpoint: Checkpoint, config: object) -> None:
    """Refuse to resume with a config other than the one the run started with.

    Why: params are immutable in MLflow and the run's params must describe its metrics. A key
    the checkpoint lacks (added to the config after it was written) counts as its default, so
    checkpoints of earlier versions still resume.
    """
    current = config_dict(config)
    fields = dataclasses.fields(config) if dataclasses.is_dataclass(config) else ()
    defaults = {item.name: item.default for item in fields
                if item.default is not dataclasses.MISSING}
    saved = {**defaults, **checkpoint.config}
    changed = sorted(
        key for key in set(current) | set(checkpoint.config)
        if current.get(key) != saved.get(key)
    )
    if changed:
        details = ", ".join(
            f"{key}: {saved.get(key)!r} -> {current.get(key)!r}" for key in changed
        )
        raise TrainerConfigError(
            f"cannot resume run {checkpoint.run_id} with a different config ({details}); "
            "resume with the config it started with"
        )
