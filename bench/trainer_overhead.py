"""Each trainer's epoch time against a plain PyTorch loop with the same model, data and batch size.

Run it by hand (not in CI); it takes a minute or two on two CPU cores::

    .venv/bin/python bench/trainer_overhead.py                 # every trainer that exists
    .venv/bin/python bench/trainer_overhead.py --records 4000 --epochs 4 --repeats 2
    .venv/bin/python bench/trainer_overhead.py --only advanced_training

For every trainer it runs, in one process, alternating which side goes first:

- the trainer itself, tracked into a throwaway SQLite store in a temporary folder, with
  per-step loss logging on (``log_every_steps=1``, the worst case) and early stopping off;
- a plain loop: the trainer's own model (same builder, spec and seed), the same tensors, the
  same batch size, loss, AdamW settings and gradient clipping, with no tracking at all.

It prints two measures per trainer, each as tracked / plain seconds and ratios of the medians
and of the minimums over epochs 2..N of every repeat (the verdict uses the minimums, the
least disturbed epochs, since other processes on a shared machine add noise to the medians):

- **train pass**: the ``epoch_time_s`` the trainer logs (its optimiser loop, per-step logging
  included) against the plain loop's optimiser pass. Target: within 1.05x.
- **whole epoch**: time between the trainer's ``on_epoch`` callbacks against a plain epoch of
  optimiser pass plus one validation pass: what the user waits for, including the trainer's
  extra bookkeeping (train-split metrics, checkpoints, schedulers).

The architecture search is narrowed to one fixed candidate without reshapes, so both sides
train the same network. The online learner has no epochs: its measure is one pass over the
stream, from its first update to its last, against a plain loop doing the same per-batch work
(featurise, score without gradients, one Adam step on the batch plus as many replayed rows).

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
class BenchData:
    """The same synthetic log as records (for the stream learner) and as a data set."""

    records: list[Any]
    dataset: Any


PlainTwin = Callable[[], Timings]
"""Runs the plain loop once and returns its timings."""
Runner = Callable[[Any, BenchData, Path, int], tuple[Timings, PlainTwin]]
"""``run(module, data, run_folder, epochs)``: run the trainer tracked; its timings and twin."""


@dataclass
class TrainerBench:
    """One trainer: how to run it tracked, and how to set up its plain twin."""

    name: str
    module: str
    run_tracked: Runner


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
    """``on_epoch`` callback: wall time between epochs and the ``epoch_time_s`` each reports."""

    def __init__(self) -> None:
        self.marks: list[float] = []
        self.logged: list[float] = []

    def __call__(self, epoch: int, metrics: dict[str, float]) -> None:
        self.marks.append(time.perf_counter())
        if "epoch_time_s" in metrics:
            self.logged.append(float(metrics["epoch_time_s"]))

    def timings(self) -> Timings:
        """Epoch 1 dropped: its logged time is warm-up, its wall time includes run set-up."""
        whole = [later - earlier for earlier, later in zip(self.marks, self.marks[1:])]
        return Timings(self.logged[1:], whole)


def make_tracker(experiment: str, run_folder: Path) -> Any:
    """A tracker on the bench's throwaway store (shared by every run of this bench)."""
    from agentnn.mlflow_integration import ExperimentTracker

    root = run_folder.parent
    return ExperimentTracker(experiment, tracking_uri=f"sqlite:///{root / 'store.db'}",
                             journal_dir=root / "journal")


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


def fit_trainer(config_class: str) -> Runner:
    """Runner for a trainer built on ``common.fit`` (advanced, multi-task)."""

    def run(module: Any, data: BenchData, folder: Path, epochs: int) -> tuple[Timings, PlainTwin]:
        config = getattr(module, config_class)(
            epochs=epochs, batch_size=BATCH_SIZE, seed=SEED, early_stopping_patience=0,
            log_every_steps=1, checkpoint_dir=str(folder / "checkpoints"),
        )
        clock = EpochClock()
        with captured_supervised_task() as captured:
            module.train(config, data.dataset, tracker=make_tracker(module.EXPERIMENT, folder),
                         on_epoch=clock)
        task, used = captured["task"], captured["config"]
        setup = PlainSetup(
            build=lambda: captured["build_model"](task.spec),
            train_split=task.splits["train"], val_split=task.splits["val"], loss=task.loss,
            learning_rate=used.learning_rate, weight_decay=used.weight_decay,
            grad_clip=used.grad_clip, batch_size=used.batch_size,
        )
        return clock.timings(), lambda: plain_loop(setup, epochs, SEED)

    return run


def classifier_setup(module: Any, prepared: Any, spec: dict[str, Any], *, learning_rate: float,
                     weight_decay: float, grad_clip: float, batch_size: int,
                     grad_accum_steps: int = 1) -> PlainSetup:
    """A cross-entropy classifier on the routing data a trainer prepared (``x``, ``y``)."""
    import torch.nn.functional as F

    return PlainSetup(
        build=lambda: module.build_model(spec),
        train_split={"x": prepared.train.x, "y": prepared.train.y},
        val_split={"x": prepared.val.x, "y": prepared.val.y},
        loss=lambda model, batch: F.cross_entropy(model(batch["x"]), batch["y"]),
        learning_rate=learning_rate, weight_decay=weight_decay, grad_clip=grad_clip,
        batch_size=batch_size, grad_accum_steps=grad_accum_steps,
    )


def distributed_trainer(module: Any, data: BenchData, folder: Path,
                        epochs: int) -> tuple[Timings, PlainTwin]:
    """The DDP trainer as a world of one (no ``torchrun``): its loop, minus the collectives."""
    config = module.DistributedConfig(
        epochs=epochs, batch_size=BATCH_SIZE, seed=SEED, early_stopping_patience=0,
        checkpoint_root=str(folder / "checkpoints"),
    )
    clock = EpochClock()
    module.train(config, data.dataset, tracker=make_tracker(module.EXPERIMENT, folder),
                 on_epoch=clock)
    prepared = module.prepare_data(data.dataset)
    spec = {"n_features": int(prepared.train.x.shape[1]), "hidden_sizes": config.hidden_sizes,
            "n_classes": prepared.n_classes, "dropout": config.dropout}
    setup = classifier_setup(
        module, prepared, spec, learning_rate=config.lr, weight_decay=config.weight_decay,
        grad_clip=config.max_grad_norm, batch_size=config.batch_size,
        grad_accum_steps=config.grad_accum_steps,
    )
    return clock.timings(), lambda: plain_loop(setup, epochs, SEED)


SEARCH_ARCHITECTURE = {"hidden_sizes": [64, 64], "dropout": 0.1, "activation": "relu"}


def architecture_trainer(module: Any, data: BenchData, folder: Path,
                         epochs: int) -> tuple[Timings, PlainTwin]:
    """The search narrowed to one fixed candidate without reshapes, so both sides train the
    same network; the candidate's epochs (in its child run) are what is timed."""
    config = module.ArchitectureSearchConfig(
        n_candidates=1, depths=[len(SEARCH_ARCHITECTURE["hidden_sizes"])],
        widths=sorted(set(SEARCH_ARCHITECTURE["hidden_sizes"])),
        dropouts=[SEARCH_ARCHITECTURE["dropout"]],
        activations=[SEARCH_ARCHITECTURE["activation"]], epochs=epochs,
        batch_size=BATCH_SIZE, max_reshapes=0, seed=SEED,
        checkpoint_root=str(folder / "checkpoints"),
    )
    clock = EpochClock()
    module.train(config, data.dataset, tracker=make_tracker(module.EXPERIMENT, folder),
                 on_epoch=clock)
    prepared = module.prepare_data(data.dataset)
    spec = {"n_features": int(prepared.train.x.shape[1]), "n_classes": prepared.n_classes,
            **SEARCH_ARCHITECTURE}
    setup = classifier_setup(module, prepared, spec, learning_rate=config.lr,
                             weight_decay=config.weight_decay, grad_clip=0.0,
                             batch_size=config.batch_size)
    return clock.timings(), lambda: plain_loop(setup, epochs, SEED)


def online_trainer(module: Any, data: BenchData, folder: Path,
                   epochs: int) -> tuple[Timings, PlainTwin]:
    """One pass of the stream learner over the log (its "epoch"), timed from the first update
    to the last, against :func:`plain_stream`."""
    config = module.OnlineConfig(
        agents=list(data.dataset.agents), featurizer_dim=FEATURE_DIM, batch_size=BATCH_SIZE,
        seed=SEED, checkpoint_root=str(folder / "checkpoints"),
    )
    clock = EpochClock()
    module.train(config, data.records, tracker=make_tracker(module.EXPERIMENT, folder),
                 on_epoch=clock)
    stream = clock.marks[-1] - clock.marks[0]
    return Timings([stream], [stream]), lambda: plain_stream(module, config, data.records)


def plain_stream(module: Any, config: Any, records: list[Any]) -> Timings:
    """The online learner's per-batch work as a plain loop: featurise the batch, score it
    without gradients, one Adam step on it plus as many rows replayed from a plain ring
    buffer. Same model, same records, same batch size; no tracking, drift or snapshots."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(config.seed)
    featurizer = config.featurizer()
    agent_index = {name: index for index, name in enumerate(config.agents)}
    model = module.build_model({"n_features": featurizer.dim, "n_agents": len(config.agents),
                                "hidden_sizes": list(config.hidden_sizes),
                                "dropout": config.dropout})
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    memory_x = torch.zeros(config.replay_capacity, featurizer.dim)
    memory_a = torch.zeros(config.replay_capacity, dtype=torch.long)
    memory_s = torch.zeros(config.replay_capacity)
    stored = 0
    started: float | None = None
    for start in range(0, len(records), config.batch_size):
        chunk = records[start:start + config.batch_size]
        x = torch.from_numpy(featurizer.transform([r.task_description for r in chunk]))
        a = torch.tensor([agent_index[r.chosen_agent] for r in chunk])
        s = torch.tensor([float(r.success) for r in chunk])
        model.eval()
        with torch.no_grad():
            float(F.binary_cross_entropy_with_logits(model(x).gather(1, a[:, None])[:, 0], s))
        size = min(stored, config.replay_capacity)
        replay = torch.randint(0, max(size, 1), (len(chunk) if size else 0,))
        batch_x = torch.cat([x, memory_x[replay]])
        batch_a = torch.cat([a, memory_a[replay]])
        batch_s = torch.cat([s, memory_s[replay]])
        model.train()
        logits = model(batch_x).gather(1, batch_a[:, None])[:, 0]
        loss = F.binary_cross_entropy_with_logits(logits, batch_s)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        float(loss.detach())
        slots = torch.arange(stored, stored + len(chunk)) % config.replay_capacity
        memory_x[slots], memory_a[slots], memory_s[slots] = x, a, s
        stored += len(chunk)
        if started is None:
            started = time.perf_counter()  # as on the tracked side: from the first update on
    assert started is not None
    stream = time.perf_counter() - started
    return Timings([stream], [stream])


TRAINERS = (
    TrainerBench("advanced_training", "agentnn.nn_models.advanced_training",
                 fit_trainer("AdvancedTrainingConfig")),
    TrainerBench("architecture_search", "agentnn.nn_models.dynamic_architecture",
                 architecture_trainer),
    TrainerBench("multi_task_learning", "agentnn.nn_models.multi_task_learning",
                 fit_trainer("MultiTaskConfig")),
    TrainerBench("distributed_training", "agentnn.nn_models.training_infrastructure",
                 distributed_trainer),
    TrainerBench("online_learning", "agentnn.nn_models.online_learning", online_trainer),
)


# --- the report --------------------------------------------------------------------------------


def ratio_line(name: str, tracked: Timings, plain: Timings) -> str:
    """Median and best (minimum) epoch times, tracked over plain, for both measures.

    The median is what a user sees on a busy machine; the minimum is the least disturbed
    epoch of each side, which shows a systematic per-step cost even under noisy load.
    """
    def pair(tracked_values: list[float], plain_values: list[float]) -> str:
        median = statistics.median(tracked_values) / statistics.median(plain_values)
        best = min(tracked_values) / min(plain_values)
        return (f"{statistics.median(tracked_values):.3f}/{statistics.median(plain_values):.3f}"
                f" s = {median:.2f}x median, {best:.2f}x best")

    verdict = "ok" if (
        min(tracked.train_pass) / min(plain.train_pass) <= TARGET_RATIO
    ) else "over target"
    return (f"{name:<21} train pass {pair(tracked.train_pass, plain.train_pass)} "
            f"({verdict}, target {TARGET_RATIO:.2f}x) | whole epoch "
            f"{pair(tracked.whole_epoch, plain.whole_epoch)}")


def bench_trainer(bench: TrainerBench, data: BenchData, epochs: int, repeats: int,
                  folder: Path) -> str:
    """Alternate tracked and plain runs ``repeats`` times; one line of ratios.

    The plain twin needs the trainer's prepared model and data, so the very first run is
    tracked; after that the order flips every repeat so that drifting machine load falls on
    both sides alike.
    """
    module = importlib.import_module(bench.module)
    tracked, plain = Timings(), Timings()
    twin: PlainTwin | None = None
    for repeat in range(repeats):
        if twin is not None and repeat % 2 == 1:
            plain.extend(twin())
        run_folder = folder / f"{bench.name}-{repeat}"
        run_folder.mkdir()
        tracked_run, twin = bench.run_tracked(module, data, run_folder, epochs)
        tracked.extend(tracked_run)
        if repeat % 2 == 0:
            plain.extend(twin())
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

    records = synthesize_interactions(args.records, AGENTS, seed=SEED)
    data = BenchData(records, build_interaction_dataset(
        records, HashingFeaturizer(dim=FEATURE_DIM), seed=SEED))
    print(f"data: {args.records} synthetic records, {len(data.dataset.train)} training rows, "
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
                print(f"{bench.name:<21} skipped: {bench.module} is not importable")
                continue
            print(bench_trainer(bench, data, args.epochs, args.repeats, Path(folder)),
                  flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
