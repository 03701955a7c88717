"""Atomic checkpoints: write, keep the last N, read back without unpickling code, resume checks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from agentnn.errors import TrainerConfigError
from agentnn.nn_models.training.configs import JSONDict, check_positive, config_dict

if TYPE_CHECKING:
    from types import TracebackType

    import torch
    from _typeshed import DataclassInstance

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


def detached_copy(state: Any) -> Any:  # Any: returns whatever shape its owner gave the state
    """``state`` (nested dicts, lists and tuples) with every tensor copied to the CPU.

    Why: a model's and an optimiser's ``state_dict()`` hold their live tensors (``.cpu()`` of
    a CPU tensor is the tensor itself), which training goes on changing in place while a
    checkpoint is written in the background.
    """
    import torch

    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {key: detached_copy(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(detached_copy(value) for value in state)
    return state


class CheckpointManager:
    """Writes checkpoints atomically into one folder and keeps the last ``keep_last``.

    Atomic: each file is written as ``.tmp`` then moved into place with ``os.replace``, so a
    crash mid-write leaves the previous checkpoint intact and never a half-written one.

    :meth:`save_in_background` writes on a thread of its own while training goes on; use the
    manager as a context manager (or call :meth:`wait`) so the last write is on disk, and its
    error raised, before the checkpoints are read.
    """

    def __init__(
        self, directory: str | os.PathLike[str], keep_last: int = DEFAULT_KEEP_CHECKPOINTS
    ) -> None:
        check_positive("keep_checkpoints", keep_last)
        self.directory = Path(directory)
        self.keep_last = int(keep_last)
        self._pending: threading.Thread | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> CheckpointManager:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if exc_type is None:
            self.wait()
            return
        with contextlib.suppress(Exception):  # the error that stopped training is the one shown
            self.wait()

    def path_for(self, epoch: int) -> Path:
        return self.directory / f"{CHECKPOINT_PREFIX}{epoch:04d}{CHECKPOINT_SUFFIX}"

    def save(self, checkpoint: Checkpoint) -> Path:
        """Write ``epoch-NNNN.pt`` and delete checkpoints beyond the last ``keep_last``
        (after a background write still under way, so they land in order)."""
        self.wait()
        return self._write(checkpoint)

    def save_in_background(self, checkpoint: Checkpoint) -> Path:
        """Like :meth:`save`, on a thread, so training goes on while the file is written.

        Why: serialising a checkpoint, moving it into place and pruning old ones took 7-9 ms
        of every improving epoch in ``bench/trainer_overhead.py`` (2-3% of a small router's
        epoch), time the training thread only waited on, as Lightning's ``AsyncCheckpointIO``
        also avoids. ``checkpoint`` must hold copies (:func:`detached_copy`): the thread reads
        it after this returns. One write at a time: a new one first waits for the last, and
        the last one's error is raised here or by :meth:`wait`. The thread is not a daemon, so
        the interpreter finishes the write before it exits.
        """
        self.wait()
        thread = threading.Thread(target=self._write_or_keep_error, args=(checkpoint,),
                                  name="agentnn-checkpoint")
        self._pending = thread
        thread.start()
        return self.path_for(checkpoint.epoch)

    def wait(self) -> None:
        """Return once no write is under way; raise the error of a background write."""
        if self._pending is not None:
            self._pending.join()
            self._pending = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _write_or_keep_error(self, checkpoint: Checkpoint) -> None:
        try:
            self._write(checkpoint)
        except BaseException as error:  # raised on the training thread by wait()
            self._error = error

    def _write(self, checkpoint: Checkpoint) -> Path:
        import torch

        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path_for(checkpoint.epoch)
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


def check_resume_config(checkpoint: Checkpoint, config: DataclassInstance) -> None:
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
