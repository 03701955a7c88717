"""What tracking costs a training loop: untracked, plain `mlflow.log_metric`, ExperimentTracker.

    .venv/bin/python bench/tracking_overhead.py [--steps 2000] [--metrics 10]

Trains the same small MLP on CPU (steps of about 5 ms) three ways in one process, each on a fresh
embedded SQLite store, logging ``--metrics`` values per step:

- untracked: the bare loop (measured twice, first and last, to see the machine's drift);
- mlflow: one synchronous ``mlflow.log_metric`` call per value, as most scripts do;
- agentnn: ``run.log_metrics`` per step through ExperimentTracker.

Prints, for each, the step loop alone and the whole wall time (run start, loop, and the final
drain until the store has every point), and their ratios to the untracked run. Targets for
agentnn: loop within 1.02x, whole within 1.15x.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

INPUT, HIDDEN, CLASSES, BATCH = 256, 512, 8, 384  # about 5 ms a step on 2 CPU cores


def make_model(seed: int) -> tuple[nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(INPUT, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN),
                          nn.ReLU(), nn.Linear(HIDDEN, CLASSES))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(BATCH, INPUT)
    y = torch.randint(CLASSES, (BATCH,))
    return model, optimizer, x, y


def train(steps: int, n_metrics: int, log: Callable[[dict[str, float], int], None] | None) -> float:
    """The step loop; returns its duration in seconds."""
    model, optimizer, x, y = make_model(0)
    loss_fn = nn.CrossEntropyLoss()
    started = time.perf_counter()
    for step in range(steps):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if log is not None:
            value = loss.item()
            log({f"metric_{i}": value + i for i in range(n_metrics)}, step)
    return time.perf_counter() - started


def in_fresh_store(function: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    """Run ``function`` in a new folder whose ./mlruns is an empty embedded store."""
    previous = Path.cwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        try:
            return function()
        finally:
            os.chdir(previous)


def untracked(steps: int, n_metrics: int) -> tuple[float, float]:
    started = time.perf_counter()
    loop = train(steps, n_metrics, None)
    return loop, time.perf_counter() - started


def plain_mlflow(steps: int, n_metrics: int) -> tuple[float, float]:
    import mlflow

    def run() -> tuple[float, float]:
        mlflow.set_tracking_uri(f"sqlite:///{Path.cwd() / 'mlflow.db'}")
        mlflow.set_experiment("bench")
        started = time.perf_counter()
        with mlflow.start_run():
            def log(metrics: dict[str, float], step: int) -> None:
                for key, value in metrics.items():
                    mlflow.log_metric(key, value, step=step)

            loop = train(steps, n_metrics, log)
        return loop, time.perf_counter() - started

    return in_fresh_store(run)


def agentnn_tracker(steps: int, n_metrics: int) -> tuple[float, float]:
    import mlflow

    from agentnn.mlflow_integration import ExperimentTracker

    def run() -> tuple[float, float]:
        tracker = ExperimentTracker("bench")
        started = time.perf_counter()
        with tracker.start_run() as tracked:
            loop = train(steps, n_metrics, tracked.log_metrics)
        whole = time.perf_counter() - started
        history = mlflow.MlflowClient(tracker.tracking_uri).get_metric_history(
            tracked.run_id, "metric_0"
        )
        assert len(history) == steps, f"only {len(history)} of {steps} points arrived"
        return loop, whole

    return in_fresh_store(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--metrics", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="untracked/agentnn repeats")
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="torch intra-op threads (0: torch's default, one per core)")
    parser.add_argument("--skip-plain", action="store_true",
                        help="leave out plain mlflow.log_metric (it takes minutes)")
    args = parser.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    import mlflow  # noqa: F401  (imported up front: not part of any measured time)

    train(50, 0, None)  # warm up torch
    results: dict[str, list[tuple[float, float]]] = {"untracked": [], "agentnn": [], "mlflow": []}
    for _ in range(args.repeats):
        results["untracked"].append(untracked(args.steps, args.metrics))
        results["agentnn"].append(agentnn_tracker(args.steps, args.metrics))
    if not args.skip_plain:
        results["mlflow"].append(plain_mlflow(args.steps, args.metrics))
    results["untracked"].append(untracked(args.steps, args.metrics))

    base_loop = statistics.median(loop for loop, _ in results["untracked"])
    base_whole = statistics.median(whole for _, whole in results["untracked"])
    points = args.steps * args.metrics
    print(f"{args.steps} steps, {args.metrics} metrics a step ({points} points), "
          f"torch threads {torch.get_num_threads()}, medians of {args.repeats} runs "
          f"(plain mlflow: 1 run)")
    print(f"untracked step {1000 * base_loop / args.steps:.2f} ms")
    print(f"{'mode':<10} {'loop s':>8} {'whole s':>8} {'loop x':>8} {'whole x':>8}")
    for mode, runs in results.items():
        if not runs:
            continue
        loop = statistics.median(value for value, _ in runs)
        whole = statistics.median(value for _, value in runs)
        print(f"{mode:<10} {loop:8.2f} {whole:8.2f} {loop / base_loop:8.3f}x "
              f"{whole / base_whole:8.3f}x")


if __name__ == "__main__":
    main()
