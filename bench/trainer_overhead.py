"""Each trainer's epoch time against a plain PyTorch loop with the same model, data and batch size.

Run it by hand (not in CI); it takes a minute or two on two CPU cores::

    .venv/bin/python bench/trainer_overhead.py                 # every trainer that exists
    .venv/bin/python bench/trainer_overhead.py --records 4000 --epochs 4 --repeats 2
    .venv/bin/python bench/trainer_overhead.py --only advanced_training

For every trainer it runs, in one process and interleaved (plain, tracked, plain, tracked, …):

- the trainer itself, tracked into a throwaway SQLite store in a temporary folder, with
  per-step loss logging on (``log_every_steps=1``, the worst case) and early stopping off;
- a plain loop: the trainer's own model (same builder, spec and seed), the same tensors, the
  same batch size, loss, AdamW settings and gradient clipping, with no tracking at all.

It prints two ratios per trainer (tracked / plain, medians over epochs 2..N of every repeat):

- **train pass**: the ``epoch_time_s`` the trainer logs (its optimiser loop, per-step logging
  included) against the plain loop's optimiser pass. Target: within 1.05x.
- **whole epoch**: time between the trainer's ``on_epoch`` callbacks against a plain epoch of
  optimiser pass plus one validation pass: what the user waits for, including the trainer's
  extra bookkeeping (train-split metrics, checkpoints, schedulers).

The first epoch of every run is dropped (allocator and thread-pool warm-up). Torch runs on one
thread by default (``--threads``). Other processes on the machine add noise (the load average
is printed at the start and the end); compare ratios from the same run only.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# --- defaults --------------------------------------------------------------------------------
RECORDS = 12_000  # synthetic log size; ~8,400 training rows, so an epoch is a few hundred steps
AGENTS = 4
FEATURE_DIM = 256
BATCH_SIZE = 32  # small batches make per-step overhead visible, the case that matters
EPOCHS = 5  # per run; the first is dropped as warm-up
REPEATS = 3  # interleaved plain/tracked pairs per trainer
SEED = 0
TARGET_RATIO = 1.05
THREADS = 1  # torch intra-op threads; tiny models gain nothing from more, and on a shared
#              machine spinning threads turn other processes' load into noise


@dataclass
class Timings:
    """Seconds per epoch, warm-up epochs already dropped."""

    train_pass: list[float] = field(default_factory=list)
    whole_epoch: list[float] = field(default_factory=list)

    def extend(self, other: Timings) -> None:
        self.train_pass.extend(other.train_pass)
        self.whole_epoch.extend(other.whole_epoch)


@dataclass
class PlainSetup:
    """What a plain loop needs to train exactly the trainer's model on the trainer's data."""

    build: Callable[[], Any]
    """A fresh model, seeded as the trainer seeds it."""
    train_split: dict[str, Any]
    """Name -> tensor, all indexed by sample; the loss reads what it needs."""
    val_split: dict[str, Any]
    loss: Callable[[Any, dict[str, Any]], Any]
    learning_rate: float
    weight_decay: float
    grad_clip: float
    batch_size: int
    grad_accum_steps: int = 1


@dataclass
class TrainerBench:
    """One trainer: how to run it tracked, and how to set up its plain twin."""

    name: str
    module: str
    run_tracked: Callable[[Any, Any, Path, int], tuple[Timings, PlainSetup]]


# --- the plain loop ----------------------------------------------------------------------------


def plain_loop(setup: PlainSetup, epochs: int, seed: int) -> Timings:
    """AdamW over shuffled mini-batches, then one no-grad validation pass; nothing else."""
    import torch

    torch.manual_seed(seed)
    model = setup.build()
    optimizer = torch.optim.AdamW(model.parameters(), lr=setup.learning_rate,
                                  weight_decay=setup.weight_decay)
    n_train = len(next(iter(setup.train_split.values())))
    generator = torch.Generator().manual_seed(seed)
    timings = Timings()
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(n_train, generator=generator)
        batches = list(torch.split(order, setup.batch_size))
        running_loss = 0.0
        for start in range(0, len(batches), setup.grad_accum_steps):
            window = batches[start:start + setup.grad_accum_steps]
            window_size = sum(len(index) for index in window)
            for index in window:
                batch = {key: value[index] for key, value in setup.train_split.items()}
                loss = setup.loss(model, batch)
                (loss * (len(index) / window_size)).backward()
                running_loss += loss.item()
            if setup.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), setup.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        trained = time.perf_counter()
        model.eval()
        with torch.no_grad():
            float(setup.loss(model, setup.val_split))
        finished = time.perf_counter()
        if epoch > 1:
            timings.train_pass.append(trained - started)
            timings.whole_epoch.append(finished - started)
    return timings


# --- running a trainer tracked -----------------------------------------------------------------


class EpochClock:
    """``on_epoch`` callback that records the wall time between consecutive epochs."""

    def __init__(self) -> None:
        self.marks: list[float] = []
        self.start = time.perf_counter()

    def __call__(self, epoch: int, metrics: dict[str, float]) -> None:
        self.marks.append(time.perf_counter())

    def whole_epochs(self) -> list[float]:
        """Seconds between callbacks, from epoch 2 on (epoch 1 includes run set-up)."""
        return [later - earlier for earlier, later in zip(self.marks, self.marks[1:])]


def logged_epoch_times(tracking_uri: str, run_id: str) -> list[float]:
    """The trainer's own ``epoch_time_s`` per epoch, read back from the store, epoch 1 dropped."""
    import mlflow

    history = mlflow.MlflowClient(tracking_uri).get_metric_history(run_id, "epoch_time_s")
    return [point.value for point in sorted(history, key=lambda p: p.step)][1:]


def make_tracker(experiment: str, run_folder: Path) -> tuple[Any, str]:
    """A tracker on the bench's throwaway store (shared by every run of this bench)."""
    from agentnn.mlflow_integration import ExperimentTracker

    root = run_folder.parent
    uri = f"sqlite:///{root / 'store.db'}"
    return ExperimentTracker(experiment, tracking_uri=uri, journal_dir=root / "journal"), uri


@contextlib.contextmanager
def captured_supervised_task() -> Iterator[dict[str, Any]]:
    """Record the ``SupervisedTask`` a trainer hands to the shared ``fit`` loop.

    The plain twin then uses the very builder, spec, tensors and loss the trainer used.
    """
    from agentnn.nn_models import common

    captured: dict[str, Any] = {}
    original = common.fit

    def recording_fit(task: Any, config: Any, build_model: Any, **options: Any) -> Any:
        captured.update(task=task, config=config, build_model=build_model)
        return original(task, config, build_model, **options)

    common.fit = recording_fit
    try:
        yield captured
    finally:
        common.fit = original


def fit_trainer(config_class: str) -> Callable[[Any, Any, Path, int], tuple[Timings, PlainSetup]]:
    """Runner for a trainer built on ``common.fit`` (advanced, multi-task)."""

    def run(module: Any, data: Any, folder: Path, epochs: int) -> tuple[Timings, PlainSetup]:
        config = getattr(module, config_class)(
            epochs=epochs, batch_size=BATCH_SIZE, seed=SEED, early_stopping_patience=0,
            log_every_steps=1, checkpoint_dir=str(folder / "checkpoints"),
        )
        tracker, uri = make_tracker(module.EXPERIMENT, folder)
        clock = EpochClock()
        with captured_supervised_task() as captured:
            result = module.train(config, data, tracker=tracker, on_epoch=clock)
        task, used = captured["task"], captured["config"]
        setup = PlainSetup(
            build=lambda: captured["build_model"](task.spec),
            train_split=task.splits["train"], val_split=task.splits["val"], loss=task.loss,
            learning_rate=used.learning_rate, weight_decay=used.weight_decay,
            grad_clip=used.grad_clip, batch_size=used.batch_size,
        )
        return Timings(logged_epoch_times(uri, result.run_id), clock.whole_epochs()), setup

    return run


def distributed_trainer(module: Any, data: Any, folder: Path,
                        epochs: int) -> tuple[Timings, PlainSetup]:
    """The DDP trainer as a world of one (no ``torchrun``): its loop, minus the collectives."""
    import torch.nn.functional as F

    config = module.DistributedConfig(
        epochs=epochs, batch_size=BATCH_SIZE, seed=SEED, early_stopping_patience=0,
        checkpoint_root=str(folder / "checkpoints"),
    )
    tracker, uri = make_tracker(module.EXPERIMENT, folder)
    clock = EpochClock()
    result = module.train(config, data, tracker=tracker, on_epoch=clock)
    prepared = module.prepare_data(data)
    spec = {"n_features": int(prepared.train.x.shape[1]), "hidden_sizes": config.hidden_sizes,
            "n_classes": prepared.n_classes, "dropout": config.dropout}
    setup = PlainSetup(
        build=lambda: module.build_model(spec),
        train_split={"x": prepared.train.x, "y": prepared.train.y},
        val_split={"x": prepared.val.x, "y": prepared.val.y},
        loss=lambda model, batch: F.cross_entropy(model(batch["x"]), batch["y"]),
        learning_rate=config.lr, weight_decay=config.weight_decay,
        grad_clip=config.max_grad_norm, batch_size=config.batch_size,
        grad_accum_steps=config.grad_accum_steps,
    )
    return Timings(logged_epoch_times(uri, result.run_id), clock.whole_epochs()), setup


TRAINERS = (
    TrainerBench("advanced_training", "agentnn.nn_models.advanced_training",
                 fit_trainer("AdvancedTrainingConfig")),
    TrainerBench("multi_task_learning", "agentnn.nn_models.multi_task_learning",
                 fit_trainer("MultiTaskConfig")),
    TrainerBench("distributed_training", "agentnn.nn_models.training_infrastructure",
                 distributed_trainer),
)


# --- the report --------------------------------------------------------------------------------


def ratio_line(name: str, tracked: Timings, plain: Timings) -> str:
    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    pass_ratio = median(tracked.train_pass) / median(plain.train_pass)
    epoch_ratio = median(tracked.whole_epoch) / median(plain.whole_epoch)
    verdict = "ok" if pass_ratio <= TARGET_RATIO else "over target"
    return (
        f"{name:<22} train pass {median(tracked.train_pass):.3f} s vs plain "
        f"{median(plain.train_pass):.3f} s = {pass_ratio:.2f}x ({verdict}, target "
        f"{TARGET_RATIO:.2f}x) | whole epoch {median(tracked.whole_epoch):.3f} s vs "
        f"{median(plain.whole_epoch):.3f} s = {epoch_ratio:.2f}x"
    )


def bench_trainer(bench: TrainerBench, data: Any, epochs: int, repeats: int,
                  folder: Path) -> str:
    """Alternate tracked and plain runs ``repeats`` times; one line of ratios.

    The plain twin needs the trainer's prepared model and data, so the very first run is
    tracked; after that the order flips every repeat so that drifting machine load falls on
    both sides alike.
    """
    module = importlib.import_module(bench.module)
    tracked, plain = Timings(), Timings()
    setup: PlainSetup | None = None
    for repeat in range(repeats):
        if setup is not None and repeat % 2 == 1:
            plain.extend(plain_loop(setup, epochs, SEED))
        run_folder = folder / f"{bench.name}-{repeat}"
        run_folder.mkdir()
        tracked_run, setup = bench.run_tracked(module, data, run_folder, epochs)
        tracked.extend(tracked_run)
        if repeat % 2 == 0:
            plain.extend(plain_loop(setup, epochs, SEED))
    return ratio_line(bench.name, tracked, plain)


def available(bench: TrainerBench) -> bool:
    try:
        importlib.import_module(bench.module)
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=RECORDS)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--threads", type=int, default=THREADS, help="torch threads")
    parser.add_argument("--only", action="append", help="trainer name; repeatable")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is dropped as warm-up")

    import torch

    torch.set_num_threads(args.threads)
    from agentnn.data import HashingFeaturizer, build_interaction_dataset, synthesize_interactions

    data = build_interaction_dataset(
        synthesize_interactions(args.records, AGENTS, seed=SEED),
        HashingFeaturizer(dim=FEATURE_DIM), seed=SEED,
    )
    print(f"data: {args.records} synthetic records, {len(data.train)} training rows, "
          f"{FEATURE_DIM} features, batch {BATCH_SIZE}, {args.epochs} epochs x {args.repeats} "
          f"repeats, torch {torch.__version__} on {torch.get_num_threads()} thread(s), "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    # One store and one journal folder for the whole run, so one writer process serves every
    # run; it exits by itself once this process has ended and everything is sent.
    with tempfile.TemporaryDirectory(prefix="agentnn-bench-") as folder:
        for bench in TRAINERS:
            if args.only and bench.name not in args.only:
                continue
            if not available(bench):
                print(f"{bench.name:<22} skipped: {bench.module} is not importable")
                continue
            print(bench_trainer(bench, data, args.epochs, args.repeats, Path(folder)),
                  flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
