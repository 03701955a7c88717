"""Each trainer's epoch time against a plain PyTorch loop with the same model, data and batch size.

Run it by hand (not in CI); it takes about five minutes on two CPU cores::

    .venv/bin/python bench/trainer_overhead.py                 # every trainer that exists
    .venv/bin/python bench/trainer_overhead.py --records 4000 --epochs 4 --repeats 2   # quick
    .venv/bin/python bench/trainer_overhead.py --only advanced_training

Each trainer runs tracked, into a throwaway SQLite store in a temporary folder, with per-step
loss logging on where it has a knob for it (``log_every_steps=1``, the worst case) and early
stopping off. Its plain twin is the trainer's own model (same builder, spec and seed) trained
on the same tensors with the same batch size, loss, optimiser settings and gradient clipping,
with no tracking at all.

The two sides run interleaved, epoch by epoch: after each of the trainer's epochs, its
``on_epoch`` callback runs one epoch of the plain twin. Both sides of a pair therefore run
under the same machine load, which on a shared machine swings epoch times by 10-20% from one
minute to the next, far more than the 5% we want to resolve. The time spent in the callback
is excluded from the trainer's side.

Per trainer it prints, for each measure, the median tracked and plain seconds, the median
of the per-pair ratios (tracked / plain) and, in brackets, that median's 95% confidence
interval (single pairs swing by 10-20% here, so the interval says what the median can tell):

- **train pass**: the ``epoch_time_s`` the trainer logs (its optimiser loop, per-step logging
  included) against the plain twin's optimiser pass.
- **whole epoch**: the trainer's time from one ``on_epoch`` to the next against the plain
  twin's optimiser pass plus one validation pass: what the user waits for, including the
  trainer's extra bookkeeping (train-split metrics, checkpoints, schedulers, tracking).

Target (issue 11): each trainer within 1.03x of its untracked twin, on both measures.

The architecture search is narrowed to one fixed candidate without reshapes, so both sides
train the same network (trials skip ``train_acc`` by default, as the twin does). The online
learner has no epochs: its callback comes after every update, and its twin makes one plain
update on the same records (its own copies of them) with the learner's algorithm: featurise,
score without gradients, the drift-adapted learning rate, one Adam step on them plus as many
rows replayed from the learner's reservoir class; a pair is a block of 25 consecutive updates,
and "train pass" and "whole epoch" are the same number. Both sides of an update are timed
around the call (the learner's between callbacks, the twin's around ``update``), so both pay
for freeing the update's tensors as it returns; the learner logs with its defaults (a point
every 25 updates).

The first epoch (or update) of every run is dropped on both sides (warm-up). Torch runs on one
thread by default (``--threads``); the load average is printed at the start and the end.
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
EPOCHS = 9  # per run; the first is dropped as warm-up
REPEATS = 4  # tracked runs per trainer, each with its interleaved plain twin: 32 pairs
UPDATES_PER_BLOCK = 25  # the online learner's updates summed into one pair (about 60 ms)
SEED = 0
TARGET_RATIO = 1.03  # tracked / plain, both measures
THREADS = 1  # torch intra-op threads; tiny models gain nothing from more, and on a shared
#              machine spinning threads turn other processes' load into noise


@dataclass
class Pairs:
    """Seconds per epoch of both sides, pair by pair, warm-up epochs already dropped."""

    tracked_pass: list[float] = field(default_factory=list)
    plain_pass: list[float] = field(default_factory=list)
    tracked_epoch: list[float] = field(default_factory=list)
    plain_epoch: list[float] = field(default_factory=list)

    def extend(self, other: Pairs) -> None:
        for name in ("tracked_pass", "plain_pass", "tracked_epoch", "plain_epoch"):
            getattr(self, name).extend(getattr(other, name))


@dataclass
class BenchData:
    """The same synthetic log as records (for the stream learner) and as a data set."""

    records: list[Any]
    dataset: Any


@dataclass
class PlainSetup:
    """What a plain loop needs to train exactly the trainer's model on the trainer's data."""

    build: Callable[[], Any]
    """A fresh model with the trainer's architecture."""
    train_split: dict[str, Any]
    """Name -> tensor, all indexed by sample; the loss reads what it needs."""
    val_split: dict[str, Any]
    loss: Callable[[Any, dict[str, Any]], Any]
    learning_rate: float
    weight_decay: float
    grad_clip: float
    batch_size: int
    grad_accum_steps: int = 1


Runner = Callable[[Any, BenchData, Path, int], Pairs]
"""``run(module, data, run_folder, epochs)``: one tracked run with its interleaved twin."""


@dataclass
class TrainerBench:
    """One trainer: how to run it tracked alongside its plain twin."""

    name: str
    module: str
    run: Runner


# --- the plain twins ---------------------------------------------------------------------------


class PlainLoop:
    """AdamW over shuffled mini-batches, then one no-grad validation pass; nothing else.

    One :meth:`epoch` at a time, so its epochs can interleave with the trainer's.
    """

    def __init__(self, setup: PlainSetup, seed: int) -> None:
        import torch

        torch.manual_seed(seed)
        self.setup = setup
        self.model = setup.build()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=setup.learning_rate,
                                           weight_decay=setup.weight_decay)
        self.n_train = len(next(iter(setup.train_split.values())))
        self.generator = torch.Generator().manual_seed(seed)

    def epoch(self) -> tuple[float, float]:
        """(optimiser pass seconds, whole epoch seconds)."""
        import torch

        setup, model, optimizer = self.setup, self.model, self.optimizer
        started = time.perf_counter()
        model.train()
        order = torch.randperm(self.n_train, generator=self.generator)
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
        return trained - started, time.perf_counter() - started


class PlainStream:
    """The online learner's learning as plain code, one :meth:`update` at a time: featurise
    the batch, score it without gradients (the prequential loss the drift monitor watches),
    set the drift-adapted learning rate, one Adam step on the batch plus as many rows replayed
    from the learner's own reservoir, then offer the batch to the reservoir.

    Same model, records, batch size and learning algorithm (the module's ``ReplayBuffer``,
    ``DriftMonitor`` and ``adaptive_lr``): what it leaves out is what the learner does to
    report and to keep its work safe (record validation, ``val_acc`` and the other metrics,
    tracking, drift tags, snapshots).
    """

    def __init__(self, module: Any, config: Any) -> None:
        import torch

        torch.manual_seed(config.seed)
        self.module = module
        self.config = config
        self.featurizer = config.featurizer()
        self.agent_index = {name: index for index, name in enumerate(config.agents)}
        self.model = module.build_model({
            "n_features": self.featurizer.dim, "n_agents": len(config.agents),
            "hidden_sizes": list(config.hidden_dims), "dropout": config.dropout,
        })
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)
        self.buffer = module.ReplayBuffer(config.replay_capacity, self.featurizer.dim,
                                          config.seed)
        self.drift = module.DriftMonitor(config.drift_window, config.drift_reference,
                                         config.drift_threshold)

    def update(self, chunk: list[Any]) -> None:
        """One update on ``chunk`` (timed by the caller, around the call: see
        :func:`online_trainer`)."""
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(self.featurizer.transform([r.task_description for r in chunk]))
        a = torch.tensor([self.agent_index[r.chosen_agent] for r in chunk])
        s = torch.tensor([float(r.success) for r in chunk])
        self.model.eval()
        with torch.no_grad():
            logits = self.model(x).gather(1, a[:, None])[:, 0]
            self.drift.observe(float(F.binary_cross_entropy_with_logits(logits, s)))
        for group in self.optimizer.param_groups:
            group["lr"] = self.module.adaptive_lr(self.config, self.drift.updates_since_drift)
        replay_x, replay_a, replay_s = self.buffer.sample(
            int(round(self.config.replay_ratio * len(chunk))))
        batch_x = torch.cat([x, replay_x])
        batch_a = torch.cat([a, replay_a])
        batch_s = torch.cat([s, replay_s])
        self.model.train()
        logits = self.model(batch_x).gather(1, batch_a[:, None])[:, 0]
        loss = F.binary_cross_entropy_with_logits(logits, batch_s)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.buffer.add(x, a, s)


# --- running a trainer with its twin in between its epochs -------------------------------------


class InterleavedClock:
    """The ``on_epoch`` callback: times the trainer's epochs and runs a twin epoch after each.

    ``twin(epoch)`` runs one plain epoch (made lazily, since some twins need what the trainer
    prepared) and returns (pass seconds, whole seconds). The callback's own time is excluded
    from the trainer's whole-epoch time.
    """

    def __init__(self, twin: Callable[[int], tuple[float, float]]) -> None:
        self.twin = twin
        self.entries: list[float] = []
        self.exits: list[float] = []
        self.logged: list[float] = []
        self.plain: list[tuple[float, float]] = []

    def __call__(self, epoch: int, metrics: dict[str, float]) -> None:
        self.entries.append(time.perf_counter())
        if "epoch_time_s" in metrics:
            self.logged.append(float(metrics["epoch_time_s"]))
        self.plain.append(self.twin(epoch))
        self.exits.append(time.perf_counter())

    def pairs(self) -> Pairs:
        """Epoch 1 of both sides dropped: warm-up, and the trainer's includes run set-up."""
        whole = [entry - previous_exit
                 for previous_exit, entry in zip(self.exits, self.entries[1:])]
        return Pairs(tracked_pass=self.logged[1:], plain_pass=[p for p, _ in self.plain[1:]],
                     tracked_epoch=whole, plain_epoch=[w for _, w in self.plain[1:]])


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
    from agentnn.nn_models.training import loop

    captured: dict[str, Any] = {}
    original = loop.fit

    def recording_fit(task: Any, config: Any, build_model: Any, **options: Any) -> Any:
        captured.update(task=task, config=config, build_model=build_model)
        return original(task, config, build_model, **options)

    loop.fit = recording_fit
    try:
        yield captured
    finally:
        loop.fit = original


def lazy_twin(make: Callable[[], PlainLoop]) -> Callable[[int], tuple[float, float]]:
    """A twin callback that builds its plain loop on first use."""
    loop: list[PlainLoop] = []

    def epoch(_: int) -> tuple[float, float]:
        if not loop:
            loop.append(make())
        return loop[0].epoch()

    return epoch


def fit_trainer(config_class: str) -> Runner:
    """Runner for a trainer built on ``loop.fit`` (advanced, multi-task)."""

    def run(module: Any, data: BenchData, folder: Path, epochs: int) -> Pairs:
        config = getattr(module, config_class)(
            epochs=epochs, batch_size=BATCH_SIZE, seed=SEED, early_stopping_patience=0,
            log_every_steps=1, checkpoint_dir=str(folder / "checkpoints"),
        )
        with captured_supervised_task() as captured:

            def make() -> PlainLoop:
                task, used = captured["task"], captured["config"]
                return PlainLoop(PlainSetup(
                    build=lambda: captured["build_model"](task.spec),
                    train_split=task.splits["train"], val_split=task.splits["val"],
                    loss=lambda model, batch: _scalar(task.loss(model, batch)),
                    learning_rate=used.learning_rate,
                    weight_decay=used.weight_decay, grad_clip=used.grad_clip,
                    batch_size=used.batch_size,
                ), SEED)

            clock = InterleavedClock(lazy_twin(make))
            module.train(config, data.dataset, tracker=make_tracker(module.EXPERIMENT, folder),
                         on_epoch=clock)
        return clock.pairs()

    return run


def _scalar(loss: Any) -> Any:
    """The loss a ``SupervisedTask`` returns, without the extra batch metrics it may add."""
    return loss[0] if isinstance(loss, tuple) else loss


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


def distributed_trainer(module: Any, data: BenchData, folder: Path, epochs: int) -> Pairs:
    """The DDP trainer as a world of one (no ``torchrun``): its loop, minus the collectives."""
    from agentnn.nn_models.training.data_prep import prepare_data

    config = module.DistributedConfig(
        epochs=epochs, batch_size=BATCH_SIZE, seed=SEED, early_stopping_patience=0,
        checkpoint_dir=str(folder / "checkpoints"), log_every_steps=1,
    )
    prepared = prepare_data(data.dataset)
    spec = {"n_features": int(prepared.train.x.shape[1]), "hidden_sizes": config.hidden_dims,
            "n_classes": prepared.n_classes, "dropout": config.dropout}
    setup = classifier_setup(
        module, prepared, spec, learning_rate=config.learning_rate,
        weight_decay=config.weight_decay, grad_clip=config.grad_clip, batch_size=config.batch_size,
        grad_accum_steps=config.grad_accum_steps,
    )
    clock = InterleavedClock(lazy_twin(lambda: PlainLoop(setup, SEED)))
    module.train(config, data.dataset, tracker=make_tracker(module.EXPERIMENT, folder),
                 on_epoch=clock)
    return clock.pairs()


SEARCH_ARCHITECTURE = {"hidden_sizes": [64, 64], "dropout": 0.1, "activation": "relu"}
SEARCH_LEARNING_RATE = 3e-3


def architecture_trainer(module: Any, data: BenchData, folder: Path, epochs: int) -> Pairs:
    """The search narrowed to one fixed trial without reshapes or pruning, so both sides
    train the same network; the trial's epochs (in its child run) are what is timed."""
    from agentnn.nn_models.search.network import SEQUENTIAL_LAYOUT
    from agentnn.nn_models.training.data_prep import prepare_data

    config = module.ArchitectureSearchConfig(
        n_trials=1, depths=[len(SEARCH_ARCHITECTURE["hidden_sizes"])],
        widths=sorted(set(SEARCH_ARCHITECTURE["hidden_sizes"])),
        dropouts=[SEARCH_ARCHITECTURE["dropout"]],
        activations=[SEARCH_ARCHITECTURE["activation"]],
        learning_rates=[SEARCH_LEARNING_RATE, SEARCH_LEARNING_RATE], epochs=epochs,
        batch_size=BATCH_SIZE, max_reshapes=0, seed=SEED, pruner="none", device="cpu",
    )
    prepared = prepare_data(data.dataset)
    spec = {"n_features": int(prepared.train.x.shape[1]), "n_classes": prepared.n_classes,
            **SEARCH_ARCHITECTURE, "layout": SEQUENTIAL_LAYOUT}
    setup = classifier_setup(module, prepared, spec, learning_rate=SEARCH_LEARNING_RATE,
                             weight_decay=config.weight_decay, grad_clip=0.0,
                             batch_size=config.batch_size)
    clock = InterleavedClock(lazy_twin(lambda: PlainLoop(setup, SEED)))
    module.train(config, data.dataset, tracker=make_tracker(module.EXPERIMENT, folder),
                 on_epoch=clock, study=f"bench-{folder.name}",
                 storage=f"sqlite:///{folder / 'study.db'}")
    return clock.pairs()


def fresh_copies(records: list[Any]) -> list[Any]:
    """The same records as new objects with new strings, for the stream twin.

    Why: the twin runs right after the learner on each batch; on the very same objects it
    would find their texts and fields already in the CPU caches (and their string hashes
    computed), a head start that measured about 5% of an update.
    """
    import json

    from agentnn.data import InteractionRecord

    return [InteractionRecord.from_dict(json.loads(json.dumps(record.to_dict())))
            for record in records]


def online_trainer(module: Any, data: BenchData, folder: Path, epochs: int) -> Pairs:
    """One pass of the stream learner over the log, each update paired with a plain one."""
    config = module.OnlineConfig(
        agents=list(data.dataset.agents), featurizer_dim=FEATURE_DIM, batch_size=BATCH_SIZE,
        seed=SEED, checkpoint_dir=str(folder / "checkpoints"),
    )
    twin = PlainStream(module, config)
    twin_records = fresh_copies(data.records)

    def plain_update(update: int) -> tuple[float, float]:
        # Timed around the call, as the learner's side is timed between callbacks: an update's
        # tensors and autograd graph are freed as it returns, about 2% of a small update that a
        # timer inside the function would leave out (an A/A run, twin against twin, measured
        # 1.02x that way and 1.00x this way).
        start = (update - 1) * config.batch_size
        started = time.perf_counter()
        twin.update(twin_records[start:start + config.batch_size])
        seconds = time.perf_counter() - started
        return seconds, seconds

    clock = InterleavedClock(plain_update)
    module.train(config, data.records, tracker=make_tracker(module.EXPERIMENT, folder),
                 on_epoch=clock)
    per_update = clock.pairs()
    tracked = block_sums(per_update.tracked_epoch, UPDATES_PER_BLOCK)
    plain = block_sums(per_update.plain_epoch, UPDATES_PER_BLOCK)
    return Pairs(tracked, plain, tracked, plain)


def block_sums(seconds: list[float], size: int) -> list[float]:
    """Consecutive updates summed in blocks of ``size`` (a short last block dropped): pairs long
    enough to include the occasional costly update, and many of them for the median."""
    return [sum(seconds[start:start + size])
            for start in range(0, len(seconds) - size + 1, size)]


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


def measure(tracked: list[float], plain: list[float]) -> tuple[str, float]:
    """``"<tracked>/<plain> s = <ratio>x [low-high]"``: medians, the median per-pair ratio and
    its 95% confidence interval."""
    ratios = [t / p for t, p in zip(tracked, plain)]
    ratio = statistics.median(ratios)
    low, high = median_interval(ratios)
    text = (f"{statistics.median(tracked):.3f}/{statistics.median(plain):.3f} s = {ratio:.2f}x "
            f"[{low:.2f}-{high:.2f}]")
    return text, ratio


def median_interval(values: list[float]) -> tuple[float, float]:
    """A distribution-free 95% confidence interval of the median (order statistics).

    Why print it: on a shared machine single pairs swing by 10-20%, so whether a 1.04x
    differs from 1.03x depends on how many pairs were measured; the interval says so.
    """
    ordered = sorted(values)
    n = len(ordered)
    k = max(int(n / 2 - 0.98 * n ** 0.5), 0)
    return ordered[k], ordered[max(n - 1 - k, k)]


def ratio_line(name: str, pairs: Pairs) -> str:
    train_pass, pass_ratio = measure(pairs.tracked_pass, pairs.plain_pass)
    whole_epoch, epoch_ratio = measure(pairs.tracked_epoch, pairs.plain_epoch)
    verdict = "ok" if max(pass_ratio, epoch_ratio) <= TARGET_RATIO else "over target"
    return (f"{name:<21} train pass {train_pass} | whole epoch {whole_epoch} "
            f"({verdict}, target {TARGET_RATIO:.2f}x, {len(pairs.tracked_epoch)} pairs)")


def bench_trainer(bench: TrainerBench, data: BenchData, epochs: int, repeats: int,
                  folder: Path) -> str:
    """``repeats`` tracked runs, each with its plain twin interleaved; one line of ratios."""
    module = importlib.import_module(bench.module)
    pairs = Pairs()
    for repeat in range(repeats):
        run_folder = folder / f"{bench.name}-{repeat}"
        run_folder.mkdir()
        pairs.extend(bench.run(module, data, run_folder, epochs))
    return ratio_line(bench.name, pairs)


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
