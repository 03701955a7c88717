"""What tracking costs a training loop: untracked, ExperimentTracker, plain MLflow, trackio.

    .venv/bin/python bench/tracking_overhead.py [--steps 1000] [--metrics 10] [--repeats 6]
    .venv/bin/python bench/tracking_overhead.py --steps 200 --repeats 1   # a quick check
    .venv/bin/python bench/tracking_overhead.py --load 2   # on a machine busy with 2 processes

Trains the same small MLP on CPU (steps of about 5 ms) in one process, logging ``--metrics``
values per step, once per torch thread setting (all cores, then cores - 1, so the writer has a
core of its own), each tracked run on a fresh local store:

- untracked: the bare loop (measured first and last, to see the machine's drift);
- agentnn: ``run.log_metrics`` per step through ExperimentTracker (journal + writer process);
- mlflow: ``mlflow.log_metrics`` per step (one synchronous ``log_batch`` a step), plain MLflow;
- trackio: ``trackio.log`` per step, Hugging Face's local SQLite tracker, when it is installed
  (``pip install -c constraints.txt trackio``, the ``bench`` extra); kept local: no Space, no
  server, Hugging Face Hub offline, its folder in a temporary directory.

Prints, per thread setting, the step loop alone and the whole wall time (run start, loop, and the
end of the run until the store has every point; each store exists, empty, before the clock
starts) as medians, then each tracked run's ratios to the untracked runs just before and after
it (median and 95% interval of those pairs), and whether agentnn meets its targets on the paired
medians: loop <= 1.02x, whole <= 1.05x, and a whole ratio no worse than trackio's in the same
run (issue 9).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

# --- defaults ------------------------------------------------------------------------------
INPUT, HIDDEN, CLASSES, BATCH = 256, 512, 8, 384  # about 5 ms a step on 2 CPU cores
STEPS = 1000  # about 5-10 s of training per run
METRICS_PER_STEP = 10
REPEATS = 6  # agentnn/trackio runs per thread setting, each between two untracked runs
TARGET_LOOP, TARGET_WHOLE = 1.02, 1.05

Timing = tuple[float, float]  # (loop seconds, whole seconds)


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


def in_fresh_folder(function: Callable[[], Timing]) -> Timing:
    """Run ``function`` in a new empty working folder (so ./mlruns is a fresh embedded store)."""
    previous = Path.cwd()
    # mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI; left set, the next mode would log
    # into this folder after it is deleted.
    previous_uri = os.environ.get("MLFLOW_TRACKING_URI")
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        try:
            return function()
        finally:
            os.chdir(previous)
            if previous_uri is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = previous_uri


def untracked(steps: int, n_metrics: int) -> Timing:
    started = time.perf_counter()
    loop = train(steps, n_metrics, None)
    return loop, time.perf_counter() - started


def plain_mlflow(steps: int, n_metrics: int) -> Timing:
    import mlflow

    def run() -> Timing:
        mlflow.set_tracking_uri(f"sqlite:///{Path.cwd() / 'mlflow.db'}")
        mlflow.set_experiment("bench")
        started = time.perf_counter()
        with mlflow.start_run():
            def log(metrics: dict[str, float], step: int) -> None:
                mlflow.log_metrics(metrics, step=step)

            loop = train(steps, n_metrics, log)
        return loop, time.perf_counter() - started

    return in_fresh_folder(run)


def agentnn_tracker(steps: int, n_metrics: int) -> Timing:
    import mlflow

    from agentnn.mlflow_integration import ExperimentTracker

    def run() -> Timing:
        tracker = ExperimentTracker("bench")
        # The store exists before the clock starts, as for plain MLflow below (creating one
        # runs MLflow's migrations: once per project, not once per run).
        mlflow.MlflowClient(tracker.tracking_uri).search_experiments()
        started = time.perf_counter()
        with tracker.start_run() as tracked:
            loop = train(steps, n_metrics, tracked.log_metrics)
        whole = time.perf_counter() - started
        history = mlflow.MlflowClient(tracker.tracking_uri).get_metric_history(
            tracked.run_id, "metric_0"
        )
        assert len(history) == steps, f"only {len(history)} of {steps} points arrived"
        return loop, whole

    return in_fresh_folder(run)


def trackio_available() -> bool:
    try:
        import trackio  # noqa: F401
    except ImportError:
        return False
    return True


def keep_trackio_local(folder: Path) -> None:
    """Before trackio is imported: its data in ``folder``, no Space, no server, Hub offline."""
    for name in ("TRACKIO_SPACE_ID", "TRACKIO_SERVER_URL", "TRACKIO_DATASET_ID",
                 "TRACKIO_BUCKET_ID"):
        os.environ.pop(name, None)
    os.environ["TRACKIO_DIR"] = str(folder)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"


def trackio_tracker(steps: int, n_metrics: int, run_number: int) -> Timing:
    import trackio

    quiet = io.StringIO()  # trackio prints a few lines at init and finish
    started = time.perf_counter()
    with contextlib.redirect_stdout(quiet):
        trackio.init(project="bench", name=f"run-{run_number}", auto_log_cpu=False,
                     auto_log_gpu=False, embed=False)

    def log(metrics: dict[str, float], step: int) -> None:
        trackio.log(metrics, step=step)

    loop = train(steps, n_metrics, log)
    with contextlib.redirect_stdout(quiet):
        trackio.finish()
    return loop, time.perf_counter() - started


def measure(args: argparse.Namespace, with_trackio: bool) -> dict[str, list[Timing]]:
    """Every mode at the current torch thread count, interleaved so drift hits all alike."""
    results: dict[str, list[Timing]] = {"untracked": [], "agentnn": [], "mlflow": [],
                                        "trackio": []}
    for repeat in range(args.repeats):
        results["untracked"].append(untracked(args.steps, args.metrics))
        results["agentnn"].append(agentnn_tracker(args.steps, args.metrics))
        if with_trackio:
            number = len(results["trackio"]) + 100 * torch.get_num_threads() + 1000 * repeat
            results["trackio"].append(trackio_tracker(args.steps, args.metrics, number))
    if not args.skip_plain:
        results["mlflow"].append(plain_mlflow(args.steps, args.metrics))
    results["untracked"].append(untracked(args.steps, args.metrics))
    return results


def paired_ratios(runs: list[Timing], untracked: list[Timing]) -> tuple[list[float], list[float]]:
    """Each tracked run against the mean of the untracked runs just before and after it.

    Why pairs: this machine's speed drifts by 10-20% from one minute to the next, so a run is
    compared with its neighbours, not with a median taken minutes away.
    """
    loops, wholes = [], []
    for index, (loop, whole) in enumerate(runs):
        before, after = untracked[index], untracked[min(index + 1, len(untracked) - 1)]
        loops.append(loop / ((before[0] + after[0]) / 2))
        wholes.append(whole / ((before[1] + after[1]) / 2))
    return loops, wholes


def spread(ratios: list[float]) -> str:
    """``"1.03x [0.99-1.06]"``: the median ratio and a distribution-free 95% confidence interval
    of it (order statistics; with six pairs that is their lowest and highest)."""
    ordered = sorted(ratios)
    n = len(ordered)
    k = max(int(n / 2 - 0.98 * n ** 0.5), 0)
    return f"{statistics.median(ordered):.3f}x [{ordered[k]:.3f}-{ordered[n - 1 - k]:.3f}]"


def report(args: argparse.Namespace, results: dict[str, list[Timing]]) -> None:
    base_loop = statistics.median(loop for loop, _ in results["untracked"])
    base_whole = statistics.median(whole for _, whole in results["untracked"])
    points = args.steps * args.metrics
    print(f"\ntorch threads {torch.get_num_threads()} of {os.cpu_count()} cores: {args.steps} "
          f"steps, {args.metrics} metrics a step ({points} points), medians of {args.repeats} "
          f"runs (plain mlflow: 1 run); untracked step {1000 * base_loop / args.steps:.2f} ms")
    print(f"{'mode':<10} {'loop s':>8} {'whole s':>8} {'loop x':>8} {'whole x':>8}")
    ratios: dict[str, Timing] = {}
    for mode, runs in results.items():
        if not runs:
            continue
        loop = statistics.median(value for value, _ in runs)
        whole = statistics.median(value for _, value in runs)
        ratios[mode] = (loop / base_loop, whole / base_whole)
        print(f"{mode:<10} {loop:8.2f} {whole:8.2f} {loop / base_loop:8.3f}x "
              f"{whole / base_whole:8.3f}x")
    print(f"paired with the untracked runs beside them, median [95% interval] of "
          f"{args.repeats} pairs:")
    for mode in ("agentnn", "trackio"):
        if results[mode]:
            loops, wholes = paired_ratios(results[mode], results["untracked"])
            print(f"  {mode:<8} loop {spread(loops)}  whole {spread(wholes)}")
            ratios[mode] = (statistics.median(loops), statistics.median(wholes))
    loop_x, whole_x = ratios["agentnn"]
    verdicts = [f"loop {loop_x:.3f}x {'<=' if loop_x <= TARGET_LOOP else '>'} {TARGET_LOOP}",
                f"whole {whole_x:.3f}x {'<=' if whole_x <= TARGET_WHOLE else '>'} {TARGET_WHOLE}"]
    if "trackio" in ratios:
        trackio_whole = ratios["trackio"][1]
        relation = "<=" if whole_x <= trackio_whole else ">"
        verdicts.append(f"whole {whole_x:.3f}x {relation} trackio's {trackio_whole:.3f}x")
    print("agentnn: " + "; ".join(verdicts))


def thread_settings(choice: str) -> list[int]:
    cores = os.cpu_count() or 1
    settings = {"all": [cores], "cores-1": [max(1, cores - 1)],
                "both": sorted({cores, max(1, cores - 1)}, reverse=True)}
    if choice.isdigit():
        return [int(choice)]
    return settings[choice]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS, help="training steps per run")
    parser.add_argument("--metrics", type=int, default=METRICS_PER_STEP, help="values a step")
    parser.add_argument("--repeats", type=int, default=REPEATS,
                        help="runs per mode and thread setting (medians are printed)")
    parser.add_argument("--threads", "--torch-threads", default="both",
                        help="torch threads: all, cores-1, both (default), or a number")
    parser.add_argument("--skip-plain", action="store_true", help="leave out plain MLflow")
    parser.add_argument("--skip-trackio", action="store_true", help="leave out trackio")
    parser.add_argument("--load", type=int, default=0, metavar="N",
                        help="N other processes spinning on the CPU throughout (a busy machine)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as trackio_folder, busy_processes(args.load):
        with_trackio = not args.skip_trackio and trackio_available_locally(Path(trackio_folder))
        if not with_trackio and not args.skip_trackio:
            print("trackio is not installed: pip install -c constraints.txt trackio")
        import mlflow  # noqa: F401  (imported up front: not part of any measured time)

        for threads in thread_settings(args.threads):
            torch.set_num_threads(threads)
            train(50, 0, None)  # warm up torch at this thread count
            report(args, measure(args, with_trackio))


@contextlib.contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """``count`` processes that spin on the CPU until the block ends, stopped by their pids.

    Why: a training job rarely has the machine to itself (DataLoader workers, other jobs).
    Without outside load a tracker's threads only ever wait for training; with it, a tracker
    thread that holds the interpreter lock while the scheduler sets it aside stalls the
    training thread (a writer thread at nice 19 took runs to 2.2x and their ends to 17 s).
    """
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(count)]
    if count:
        print(f"{count} busy process(es) spinning beside the bench")
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def trackio_available_locally(folder: Path) -> bool:
    keep_trackio_local(folder)
    return trackio_available()


if __name__ == "__main__":
    main()
