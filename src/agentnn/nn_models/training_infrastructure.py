"""Data-parallel training of the routing classifier with PyTorch DDP, experiment
``distributed_training``.

Why: one process trains the router on one core; ``torchrun`` starts one process per core or GPU,
each trains on its own shard of every epoch, and DDP averages their gradients. Tracking stays a
one-run affair: only rank 0 opens the MLflow run (the other ranks never import MLflow); the other
ranks' losses and accuracies are all-reduced into the values rank 0 logs, so the run's metrics
describe the whole job, not one shard.

Each rank steps through the shared training loop
(``agentnn.nn_models.training.loop.run_epoch``) on its
shard. Gradient accumulation really accumulates: the inner micro-steps of an accumulation window
run under ``no_sync()``, so gradients are summed locally and exchanged once, on the optimiser
step. Rank 0 writes an atomic checkpoint (``loop.save_state``) when the validation loss improves
and at the end (keeping the last N); a job started with ``resume_from`` reopens the same MLflow
run and continues its steps.

Run example (two processes on CPU; ``gloo`` is chosen without a GPU, ``nccl`` with one)::

    python -m torch.distributed.run --nproc_per_node=2 --master_addr 127.0.0.1 \\
        --master_port 29531 -m agentnn.nn_models.training_infrastructure \\
        --dataset digits --config cfg.yaml --result-file result.json

or from Python, which picks a free loopback port and returns the run::

    from agentnn.nn_models import training_infrastructure as ti
    result = ti.launch(2, ti.DistributedConfig(epochs=5), dataset="digits")
    print(result.run_id, result.best_metrics)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from agentnn.errors import TrainerConfigError, TrainingJobError
from agentnn.nn_models.training.checkpoints import (
    DEFAULT_KEEP_CHECKPOINTS,
    Checkpoint,
    CheckpointManager,
    check_resume_config,
    checkpoint_dir,
    load_checkpoint,
)
from agentnn.nn_models.training.configs import (
    JSONDict,
    JSONValue,
    check_choice,
    check_config,
    check_positive,
    check_range,
    config_dict,
    config_from_mapping,
    flatten_config,
    log_data_params,
)
from agentnn.nn_models.training.data_prep import (
    PreparedSplits,
    TensorSplit,
    prepare_data,
)
from agentnn.nn_models.training.devices import (
    amp_enabled,
    check_device,
    grad_scaler,
    resolve_device,
)
from agentnn.nn_models.training.epochs import (
    SCHEDULERS,
    EarlyStopping,
    EpochCallback,
    EpochTimer,
    batch_order,
    current_lr,
    make_scheduler,
    seed_everything,
    step_scheduler,
)
from agentnn.nn_models.training.loop import (
    EpochPlan,
    EpochSums,
    LogStep,
    Reduce,
    TrainState,
    classifier_loss,
    restore_state,
    run_epoch,
    save_state,
)
from agentnn.nn_models.training.mlp import mlp
from agentnn.nn_models.training.results import TrainResult, copy_state, log_best_model, open_tracker

if TYPE_CHECKING:
    import torch

    from agentnn.data.datasets import LabelledDataset
    from agentnn.mlflow_integration import ExperimentTracker

EXPERIMENT = "distributed_training"
BUILDER = "agentnn.nn_models.training_infrastructure:build_model"
BACKENDS = ("auto", "gloo", "nccl")
LAUNCH_TIMEOUT_S = 1800.0  # a hung rank must not hang the caller for ever
JOB_STOP_GRACE_S = 15.0  # after SIGTERM, seconds before the job's processes are killed
PROGRESS_POLL_S = 0.5  # seconds between reads of rank 0's progress file while the job runs
EVAL_BATCH = 4096  # rows per no-grad evaluation batch: fewer, larger batches cost less
PROCESS_GROUP_TIMEOUT_S = 300  # a rank waiting this long in a collective gives up

logger = logging.getLogger(__name__)


@dataclass
class DistributedConfig:
    """Settings of a data-parallel training job; every field is logged as a param."""

    # --- model --------------------------------------------------------------------------
    hidden_dims: list[int] = field(default_factory=lambda: [64, 32])
    """Widths of the hidden layers of the router MLP."""
    dropout: float = 0.1  # 0..0.9; regularises small interaction logs
    # --- optimisation -------------------------------------------------------------------
    epochs: int = 10
    batch_size: int = 32  # samples per rank per micro-step
    grad_accum_steps: int = 1  # micro-steps summed before one optimiser step (and one all-reduce)
    learning_rate: float = 3e-3  # AdamW
    weight_decay: float = 0.01
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping
    scheduler: str = "cosine"  # constant | cosine | step | plateau
    early_stopping_patience: int = 0  # epochs without a lower val_loss; 0 never stops
    # --- job ----------------------------------------------------------------------------
    backend: str = "auto"  # auto: nccl on CUDA devices, gloo otherwise
    device: str = "auto"  # auto (CUDA when present: one GPU per rank), cpu, cuda or mps
    amp: bool = False  # float16 mixed precision, on CUDA only
    seed: int = 0
    log_every_steps: int = 10  # step_loss is all-reduced and logged every N optimiser steps
    train_accuracy: bool = False
    """Count ``train_acc`` from the training batches. Off by default, as in Lightning and the
    Hugging Face Trainer: the scale-out job is where a step's cost matters, its four tensor
    operations cost about 5% of a small model's step, and ``val_acc`` is logged every epoch."""
    keep_checkpoints: int = DEFAULT_KEEP_CHECKPOINTS  # written on improvement and at the end
    checkpoint_dir: str | None = None  # default ./checkpoints/<experiment>/<run id>
    rank_metrics_dir: str | None = None
    """When set, every rank appends its own un-reduced epoch sums to ``rank-<r>.jsonl`` here,
    so the all-reduced values in the run can be audited against the shards."""

    def validate(self) -> None:
        if not self.hidden_dims or any(
            isinstance(width, bool) or not isinstance(width, int) or width <= 0
            for width in self.hidden_dims
        ):
            raise TrainerConfigError(
                f"hidden_dims must be a non-empty list of positive integers, got "
                f"{self.hidden_dims!r}"
            )
        check_device(self.device)
        check_positive("log_every_steps", self.log_every_steps)
        check_range("dropout", self.dropout, 0.0, 0.9)
        for name in ("epochs", "batch_size", "grad_accum_steps", "keep_checkpoints"):
            check_positive(name, getattr(self, name))
        check_positive("learning_rate", self.learning_rate)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_positive("grad_clip", self.grad_clip, allow_zero=True)
        check_positive("early_stopping_patience", self.early_stopping_patience, allow_zero=True)
        check_choice("scheduler", self.scheduler, SCHEDULERS)
        check_choice("backend", self.backend, BACKENDS)


# --- model -------------------------------------------------------------------------------------


def build_model(config: JSONDict) -> torch.nn.Module:
    """The router MLP from its JSON spec: ``n_features``, ``hidden_sizes``, ``n_classes``."""
    return mlp(int(config["n_features"]), [int(width) for width in config["hidden_sizes"]],
               int(config["n_classes"]), activation="relu", dropout=float(config["dropout"]))


# --- the process group -------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """Where this process sits in the job; a single process is rank 0 of a world of 1."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world_from_env() -> World:
    """Read the rank and world size ``torchrun`` puts in the environment."""
    return World(
        rank=int(os.environ.get("RANK", 0)),
        size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def _pick_backend(requested: str, device: torch.device | None = None) -> str:
    if requested != "auto":
        return requested
    return "nccl" if device is not None and device.type == "cuda" else "gloo"


@contextlib.contextmanager
def process_group(world: World, backend: str,
                  device_name: str = "auto") -> Iterator[torch.device]:
    """Join the job's process group (when there is more than one rank); yields the device.

    On CUDA each rank takes the GPU of its local rank; ``backend="auto"`` then means nccl.
    """
    import torch
    import torch.distributed as dist

    device = resolve_device(device_name)
    if device.type == "cuda":
        torch.cuda.set_device(world.local_rank)
        device = torch.device("cuda", world.local_rank)
    backend = _pick_backend(backend, device)
    owns_group = world.distributed and not dist.is_initialized()
    if owns_group:
        dist.init_process_group(backend, timeout=timedelta(seconds=PROCESS_GROUP_TIMEOUT_S))
    try:
        yield device
        if owns_group:
            # Leave together: a rank that tears gloo down while its peer is still busy (rank 0
            # logs the model after the last epoch) can be aborted by gloo's threads.
            dist.barrier()
    finally:
        if owns_group:
            dist.destroy_process_group()


def all_reduce_sums(values: list[float], world: World, device: torch.device,
                    op: str = "sum") -> list[float]:
    """Sum (or max) a few numbers over all ranks in one collective; a no-op for one rank."""
    if not world.distributed:
        return list(values)
    import torch
    import torch.distributed as dist

    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return tensor.cpu().tolist()


# --- data (shared with the architecture search: agentnn.nn_models.training.data_prep) ---


def shard(order: torch.Tensor, world: World) -> torch.Tensor:
    """This rank's indices of an epoch order: every ``size``-th, equal length on every rank.

    The tail that does not divide evenly is dropped (as ``DistributedSampler(drop_last=True)``)
    because ranks with a different number of micro-steps would deadlock in the all-reduce.
    """
    usable = len(order) - len(order) % world.size
    return order[:usable][world.rank::world.size]


# --- one epoch ---------------------------------------------------------------------------------


@dataclass
class SplitSums:
    """Un-averaged sums of one rank over a split; averaged only after summing over all ranks."""

    loss: float = 0.0
    correct: float = 0.0
    count: float = 0.0

    def as_list(self) -> list[float]:
        return [self.loss, self.correct, self.count]


def epoch_plan(config: DistributedConfig) -> EpochPlan:
    """The shared loop's plan for this job: accumulation windows and step logging."""
    return EpochPlan(batch_size=config.batch_size, grad_clip=config.grad_clip,
                     log_every_steps=config.log_every_steps,
                     accumulate=config.grad_accum_steps)


def train_epoch(
    state: TrainState, data: TensorSplit, config: DistributedConfig, world: World, epoch: int,
    log_step: LogStep, amp: bool,
) -> EpochSums:
    """One pass of the shared loop over this rank's shard of the epoch (see ``loop.run_epoch``:
    inner micro-steps of a window run under ``no_sync()``, ``step_loss`` is all-reduced)."""
    order = shard(batch_order(len(data.y), seed=config.seed, epoch=epoch), world)
    return run_epoch(state, classifier_loss(config.train_accuracy), {"x": data.x, "y": data.y},
                     epoch_plan(config), order=order.to(data.x.device), amp=amp,
                     log_step=log_step, reduce=_reducer(world))


def _reducer(world: World) -> Reduce | None:
    """Sum over the ranks; nothing to do (and no tensor to build) in a world of one."""
    if not world.distributed:
        return None
    return lambda values: _all_reduce_tensor(values, world)


def _all_reduce_tensor(values: torch.Tensor, world: World) -> list[float]:
    """Sum a small on-device tensor over the ranks, once, and read it back."""
    if world.distributed:
        import torch.distributed as dist

        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return [float(value) for value in values.tolist()]


def evaluate(model: torch.nn.Module, data: TensorSplit, config: DistributedConfig, world: World,
             device: torch.device) -> SplitSums:
    """Loss and correct predictions of this rank's shard of a split, without gradients."""
    import torch
    import torch.nn.functional as F

    model.eval()
    sums = SplitSums()
    # every world.size-th row (no collectives: keep all), as strided views: no copy of the split
    xs, ys = data.x[world.rank::world.size], data.y[world.rank::world.size]
    size = max(config.batch_size, EVAL_BATCH)
    with torch.no_grad():
        for start in range(0, len(ys), size):
            x, y = xs[start:start + size].to(device), ys[start:start + size].to(device)
            logits = model(x)
            sums.loss += float(F.cross_entropy(logits, y, reduction="sum"))
            sums.correct += float((logits.argmax(dim=1) == y).sum())
            sums.count += len(y)
    return sums


def reduce_epoch_metrics(
    train: EpochSums, val: SplitSums, seconds: float, world: World, device: torch.device
) -> dict[str, float]:
    """Job-wide epoch metrics: sums over ranks, then averages; the slowest rank's time."""
    metrics = train.means(_reducer(world))
    val_loss, val_correct, val_count = all_reduce_sums(val.as_list(), world, device)
    (seconds_max,) = all_reduce_sums([seconds], world, device, op="max")
    seconds_max = max(seconds_max, 1e-9)
    return {
        **metrics,
        "val_loss": val_loss / val_count,
        "val_acc": val_correct / val_count,
        "epoch_time_s": seconds_max,
        "samples_per_s": train.samples * world.size / seconds_max,  # equal shards
    }


def _write_rank_sums(directory: str, world: World, epoch: int, train: EpochSums,
                     val: SplitSums) -> None:
    local = train.local()
    sums = {"loss": local["loss"], "correct": local.get("acc"), "count": float(train.samples)}
    path = Path(directory) / f"rank-{world.rank}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {"rank": world.rank, "epoch": epoch, "train": sums, "val": dataclasses.asdict(val)}
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")


# --- tracking on rank 0 only -------------------------------------------------------------------


class RankRun(Protocol):
    """What a rank logs into: the ``TrackedRun`` on rank 0, a silent stand-in elsewhere."""

    run_id: str

    def log_params(self, params: Mapping[str, JSONValue]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None: ...

    def set_tags(self, tags: Mapping[str, JSONValue]) -> None: ...


class _SilentRun:
    """Stands in for the tracked run on ranks other than 0, which never talk to MLflow."""

    run_id = ""

    def log_params(self, params: Mapping[str, JSONValue]) -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        pass

    def set_tags(self, tags: Mapping[str, JSONValue]) -> None:
        pass


@contextlib.contextmanager
def _rank_run(world: World, tracker: ExperimentTracker | None,
              run_id: str | None) -> Iterator[tuple[RankRun, str]]:
    """Rank 0: the tracked run and its experiment id; other ranks: a silent stand-in."""
    if not world.is_main:
        yield _SilentRun(), ""
        return
    tracker = open_tracker(tracker, EXPERIMENT)
    with tracker.start_run(run_id=run_id) as run:
        yield run, tracker.experiment_id


# --- the entry ---------------------------------------------------------------------------------


def train(
    config: DistributedConfig | JSONDict | None,
    data: LabelledDataset,
    *,
    tracker: ExperimentTracker | None = None,
    register_as: str | None = None,
    resume_from: str | os.PathLike[str] | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Train the router on this process's rank of the job (a world of 1 outside ``torchrun``).

    Every rank calls this with the same config and data. Rank 0 creates (or, with
    ``resume_from``, reopens) the one MLflow run and returns its :class:`TrainResult`; the other
    ranks return one with an empty ``run_id``. Bad config or data raise
    :class:`TrainerConfigError` before any process group or run exists.
    """
    config = check_config(config, DistributedConfig)
    prepared = prepare_data(data)
    checkpoint = load_checkpoint(resume_from) if resume_from is not None else None
    if checkpoint is not None:
        check_resume_config(checkpoint, config)
    world = world_from_env()
    with process_group(world, config.backend, config.device) as device:
        return _train_job(config, prepared, world, device, tracker, register_as, checkpoint,
                          on_epoch)


def _train_job(
    config: DistributedConfig, data: PreparedSplits, world: World, device: torch.device,
    tracker: ExperimentTracker | None, register_as: str | None, checkpoint: Checkpoint | None,
    on_epoch: EpochCallback | None,
) -> TrainResult:
    import torch
    from torch.nn.parallel import DistributedDataParallel

    seed_everything(config.seed)
    data = data.to(device)  # once; batches below are slices on the device
    spec = {"n_features": int(data.train.x.shape[1]), "hidden_sizes": list(config.hidden_dims),
            "n_classes": data.n_classes, "dropout": config.dropout}
    module = build_model(spec).to(device)
    optimizer = torch.optim.AdamW(module.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    amp = amp_enabled(device, config.amp)
    state = TrainState(
        model=module, optimizer=optimizer,
        scheduler=make_scheduler(optimizer, config.scheduler, epochs=config.epochs),
        stopper=EarlyStopping(patience=config.early_stopping_patience),
        scaler=grad_scaler(device, amp), best_state=copy_state(module),
    )
    if checkpoint is not None:
        restore_state(state, checkpoint, device)
    state.wrapper = DistributedDataParallel(module) if world.distributed else None
    epoch = state.epoch
    resumed_run_id = checkpoint.run_id if checkpoint else None
    with _rank_run(world, tracker, resumed_run_id) as (run, experiment_id):
        saver = CheckpointManager(
            checkpoint_dir(config.checkpoint_dir, EXPERIMENT, run.run_id or "rank"),
            config.keep_checkpoints,
        )
        if checkpoint is None:
            params = flatten_config(config)
            params["device.requested"] = params.pop("device")
            run.log_params({**params, "world_size": world.size, "device": str(device),
                            "backend": _pick_backend(config.backend, device)})
            log_data_params(run, data.params)
        with saver:  # checkpoints are written while training goes on; this waits for the last
            for epoch in range(state.epoch + 1, config.epochs + 1):
                torch.manual_seed(config.seed * 1_000_003 + epoch * 1_009 + world.rank)  # dropout
                lr = current_lr(optimizer)
                with EpochTimer(0) as timer:
                    train_sums = train_epoch(state, data.train, config, world, epoch,
                                             run.log_metrics, amp)
                val_sums = evaluate(module, data.val, config, world, device)
                if config.rank_metrics_dir:
                    _write_rank_sums(config.rank_metrics_dir, world, epoch, train_sums, val_sums)
                metrics = reduce_epoch_metrics(train_sums, val_sums, timer.seconds, world, device)
                metrics["lr"] = lr
                state.epoch = epoch
                run.log_metrics(metrics, step=epoch)
                if state.scheduler is not None:
                    step_scheduler(state.scheduler, metrics["val_loss"])
                improved = state.stopper.update(metrics["val_loss"], epoch)
                if improved:
                    state.best_state, state.best_metrics = copy_state(module), dict(metrics)
                last = epoch == config.epochs or state.stopper.should_stop
                if world.is_main and (improved or last):  # on improvement and at the end
                    save_state(saver, state, config, run.run_id, spec, background=True)
                if on_epoch is not None and world.is_main:
                    on_epoch(epoch, metrics)
                if state.stopper.should_stop:
                    break
        module.load_state_dict(state.best_state)
        best_metrics = {**state.best_metrics, **_test_metrics(module, data, config, world, device)}
        if not world.is_main:
            return TrainResult(run_id="", best_metrics=best_metrics, model_uri=None,
                               epochs_run=epoch)
        run.log_metrics({key: best_metrics[key] for key in ("test_loss", "test_acc")},
                        step=epoch)
        model_uri, version = log_best_model(
            module.cpu(), builder=BUILDER, config=spec,
            input_example=data.val.x[:2].cpu().numpy(), register_as=register_as,
            metadata={**data.metadata, "world_size": world.size},
        )
        return TrainResult(
            run_id=run.run_id, best_metrics=best_metrics, model_uri=model_uri,
            registered_version=version, epochs_run=epoch, experiment_id=experiment_id,
            best_epoch=state.stopper.best_epoch, checkpoint_dir=str(saver.directory),
            stopped_early=state.stopper.should_stop,
        )


def _test_metrics(module: torch.nn.Module, data: PreparedSplits, config: DistributedConfig,
                  world: World, device: torch.device) -> dict[str, float]:
    """The best model's loss and accuracy on the test split, summed over every rank's shard."""
    loss, correct, count = all_reduce_sums(
        evaluate(module, data.test, config, world, device).as_list(), world, device
    )
    return {"test_loss": loss / count, "test_acc": correct / count}


# --- launching the job -------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on the loopback interface that is free right now, for the rendezvous."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_source(data: str | None, dataset: str | None, seed: int) -> LabelledDataset:
    """The data set every rank loads for itself (same file, same seed, same split)."""
    from agentnn.data.datasets import load_dataset

    source = data if data is not None else dataset
    if source is None or (data is not None and dataset is not None):
        raise TrainerConfigError("give exactly one of --data <log.jsonl> or --dataset <name>")
    return load_dataset(source, seed=seed)


def launch(
    nproc: int,
    config: DistributedConfig | JSONDict | None = None,
    *,
    data: str | os.PathLike[str] | None = None,
    dataset: str | None = None,
    tracking_uri: str | None = None,
    register_as: str | None = None,
    resume_from: str | os.PathLike[str] | None = None,
    timeout: float = LAUNCH_TIMEOUT_S,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Run the job under ``torchrun`` with ``nproc`` processes on this machine; its result.

    The config and the data are checked here first, so a bad value raises
    :class:`TrainerConfigError` before any process starts or any run exists. Rank 0 writes the
    result (run id, metrics, model URI) to a JSON file that is read back once every process has
    exited; a failing or hung job raises :class:`TrainingJobError` with the rank's error line.
    ``on_epoch(epoch, metrics)`` is called here as rank 0 finishes each epoch (it appends a
    line per epoch to a progress file this process reads while the job runs).
    """
    check_positive("nproc", nproc)
    config = check_config(config, DistributedConfig)
    data_path = str(data) if data is not None else None
    prepare_data(load_source(data_path, dataset, config.seed))
    if resume_from is not None:
        check_resume_config(load_checkpoint(resume_from), config)
    with tempfile.TemporaryDirectory(prefix="agentnn-ddp-") as tmp:
        config_file = Path(tmp) / "config.json"
        result_file = Path(tmp) / "result.json"
        progress_file = Path(tmp) / "progress.jsonl"
        config_file.write_text(json.dumps(config_dict(config)), encoding="utf-8")
        command = [
            sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={int(nproc)}",
            "--nnodes=1", "--master_addr=127.0.0.1", f"--master_port={free_port()}",
            "-m", __name__, "--config", str(config_file), "--result-file", str(result_file),
        ]
        # load_source above refused neither or both
        command += ["--data", data_path] if data_path is not None else ["--dataset", str(dataset)]
        if on_epoch is not None:
            command += ["--progress-file", str(progress_file)]
        for flag, value in (("--tracking-uri", tracking_uri), ("--register-as", register_as),
                            ("--resume-from", resume_from)):
            if value is not None:
                command += [flag, str(value)]
        exit_code, output = _run_job(command, timeout,
                                     _ProgressReader(progress_file, on_epoch) if on_epoch
                                     else None)
        if exit_code != 0 or not result_file.is_file():
            raise TrainingJobError(exit_code, _first_error_line(output))
        return TrainResult(**json.loads(result_file.read_text(encoding="utf-8")))


@dataclass
class _ProgressReader:
    """Rank 0's progress file, read from where the last read stopped: one JSON line per epoch
    (``{"epoch": 3, "metrics": {…}}``) handed to ``on_epoch``."""

    path: Path
    on_epoch: EpochCallback
    offset: int = 0

    def report(self) -> None:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n") + 1  # whole lines only: rank 0 may be writing the next
        self.offset += end
        for line in chunk[:end].splitlines():
            entry = json.loads(line)
            self.on_epoch(int(entry["epoch"]), dict(entry["metrics"]))


def _run_job(command: list[str], timeout: float, progress: _ProgressReader | None = None
             ) -> tuple[int | None, str]:
    """Run ``torchrun`` in its own process group; (exit code or None on timeout, its output).

    On a timeout the whole group (``torchrun`` and every rank) is stopped by the group's id,
    so no rank outlives the call. ``progress`` is reported every :data:`PROGRESS_POLL_S`.
    """
    import time

    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                output, _ = process.communicate(
                    timeout=min(PROGRESS_POLL_S, max(0.0, deadline - time.monotonic()))
                    if progress else timeout)
                if progress:
                    progress.report()
                return process.returncode, output
            except subprocess.TimeoutExpired:
                if progress:
                    progress.report()
                if not progress or time.monotonic() >= deadline:
                    raise
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=JOB_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
        return None, f"no result within {timeout:.0f} s; " + _first_error_line(output or "")


def _first_error_line(output: str) -> str:
    """The line a failing rank printed about its error, else the last line of the output."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    for line in lines:
        if line.startswith("error:") or "Error:" in line:
            return line
    return lines[-1] if lines else "no output"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m agentnn.nn_models.training_infrastructure",
        description="One rank of a data-parallel training job; start it with torchrun.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="an interaction log (JSON Lines)")
    source.add_argument("--dataset", help="a named data set, e.g. digits")
    parser.add_argument("--config", help="DistributedConfig as a JSON or YAML file")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: resolved settings)")
    parser.add_argument("--register-as", help="register the best model under this name")
    parser.add_argument("--resume-from", help="a checkpoint file or folder to continue from")
    parser.add_argument("--result-file", help="rank 0 writes the TrainResult here as JSON")
    parser.add_argument("--progress-file",
                        help="rank 0 appends one JSON line per finished epoch here")
    return parser.parse_args(argv)


def _read_config_file(path: str | None) -> DistributedConfig:
    if path is None:
        return DistributedConfig()
    import yaml

    values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return config_from_mapping(DistributedConfig, values)


def _progress_writer(path: str | None) -> EpochCallback | None:
    """An ``on_epoch`` for rank 0 that appends the epoch as one JSON line to ``path``."""
    if path is None:
        return None

    def write(epoch: int, metrics: Mapping[str, float]) -> None:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"epoch": epoch, "metrics": dict(metrics)}) + "\n")

    return write


def main(argv: list[str] | None = None) -> int:
    """The per-rank entry ``torchrun`` starts; exit code 1 with one line on bad input.

    The rank process is an application of its own, so it sets up logging: bare lines on stderr,
    where :func:`_first_error_line` finds the ``error:`` line for the launching process.
    """
    from agentnn.errors import AgentNNError

    logging.basicConfig(format="%(message)s")
    args = _parse_args(argv)
    try:
        config = _read_config_file(args.config)
        tracker = None
        if world_from_env().is_main and args.tracking_uri:
            from agentnn.mlflow_integration import ExperimentTracker

            tracker = ExperimentTracker(EXPERIMENT, tracking_uri=args.tracking_uri)
        result = train(config, load_source(args.data, args.dataset, config.seed), tracker=tracker,
                       register_as=args.register_as, resume_from=args.resume_from,
                       on_epoch=_progress_writer(args.progress_file))
    except AgentNNError as error:
        logger.error("error: %s", error)
        return 1
    if world_from_env().is_main and args.result_file:
        target = Path(args.result_file)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(result)), encoding="utf-8")
        os.replace(tmp, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
