"""How fast `agentnn model` answers on a big experiment, against plain MLflow doing the same.

Run by hand (not in CI)::

    .venv/bin/python bench/query_speed.py            # 10,000 runs, a 1,000,000-point metric
    .venv/bin/python bench/query_speed.py --runs 2000 --history-points 50000 --repeats 1
    .venv/bin/python bench/query_speed.py --runs 0   # only the long-history rows

It builds one experiment of N runs (params, a few metric points each, some failed runs) in a
fresh SQLite store, checks through MLflow that every run is there, then times, end to end in
fresh processes, each `agentnn model` read command against its MLflow counterpart, and, in
process, ``ModelManager.best_run`` against ``mlflow.search_runs(order_by=…, max_results=1)``.
Then it times one run with a metric of ``--history-points`` points: ``metric_history`` (all
points, and downsampled to 2,000) against MLflow's ``get_metric_history`` on the same run, and
``agentnn model plot`` in a fresh process against a script that fetches the history through
MLflow and plots it with matplotlib.
It prints the medians and the ratios (MLflow time / agentnn time; higher is better for agentnn).
Targets: ``best_run`` under 0.5 s; every command at least 3x faster than MLflow's; the plot of a
million-point metric under 3 s for the whole command.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

# --- defaults ------------------------------------------------------------------------------
RUNS = 10_000  # the size
METRIC_POINTS = 5  # points per metric per run
REPEATS = 3  # timings per command; the median is reported
EXPERIMENT = "bench_query"
TARGET_BEST_RUN_SECONDS = 0.5
TARGET_RATIO = 3.0
HISTORY_POINTS = 1_000_000  # points of the long metric
HISTORY_KEY = "loss"
PLOT_POINTS = 2000  # agentnn model plot's default --max-points
TARGET_PLOT_SECONDS = 3.0
INSERT_BATCH = 100_000  # rows per executemany while building the long metric
MLFLOW_PLOT_SCRIPT = """
import sys, matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from mlflow.tracking import MlflowClient
history = MlflowClient(sys.argv[1]).get_metric_history(sys.argv[2], sys.argv[3])
history.sort(key=lambda m: (m.step, m.timestamp))
figure, axes = plt.subplots(figsize=(8, 5), dpi=100)
axes.plot([m.step for m in history], [m.value for m in history])
figure.savefig(sys.argv[4])
"""

BIN = Path(sys.executable).parent


def build_store(folder: Path, runs: int) -> tuple[str, str]:
    """A store of ``runs`` finished-or-failed runs; returns (tracking URI, experiment id).

    MLflow creates the schema and the experiment; the runs go in with bulk inserts into
    MLflow's own tables, because building the fixture is not what is measured (logging 10,000
    runs through the API would take many minutes here).
    """
    from mlflow.tracking import MlflowClient

    db = folder / "mlflow.db"
    uri = f"sqlite:///{db}"
    experiment_id = MlflowClient(uri).create_experiment(
        EXPERIMENT, artifact_location=str(folder / "artifacts")
    )
    rng = random.Random(0)
    now = int(time.time() * 1000) - runs * 1000
    run_rows, params, metrics, latest, tags = [], [], [], [], []
    for index in range(runs):
        run_id = uuid.uuid4().hex
        start = now + index * 1000
        status = "FAILED" if index % 50 == 0 else "FINISHED"
        run_rows.append((run_id, f"run-{index}", "LOCAL", "", "", "bench", status, start,
                         start + 900, "", "active", str(folder / "artifacts" / run_id),
                         int(experiment_id)))
        params += [("lr", str(rng.choice([1e-4, 1e-3, 1e-2])), run_id),
                   ("batch_size", str(rng.choice([16, 32, 64])), run_id),
                   ("layers", str(rng.randint(1, 4)), run_id)]
        tags.append(("mlflow.runName", f"run-{index}", run_id))
        for key in ("val_loss", "train_loss"):
            value = rng.uniform(0.1, 2.0)
            for step in range(METRIC_POINTS):
                value *= rng.uniform(0.8, 1.0)
                metrics.append((key, value, start + step, run_id, step, 0))
            latest.append((key, value, start + METRIC_POINTS - 1, METRIC_POINTS - 1, 0, run_id))
    with sqlite3.connect(db) as connection:
        connection.executemany(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, "
            "user_id, status, start_time, end_time, source_version, lifecycle_stage, "
            "artifact_uri, experiment_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", run_rows)
        connection.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", params)
        connection.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tags)
        connection.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "VALUES (?,?,?,?,?,?)", metrics)
        connection.executemany(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
            "VALUES (?,?,?,?,?,?)", latest)
    return uri, experiment_id


def build_long_run(uri: str, folder: Path, points: int) -> str:
    """One run logging ``points`` values of one metric; returns its id.

    MLflow creates the experiment and the run; the points go into MLflow's ``metrics`` table
    with bulk inserts (``log_batch`` manages about 7,000 points/s here, so a million would
    take minutes of fixture building), and ``latest_metrics`` gets the last one, as MLflow's
    own logging leaves it. :func:`check_long_run` then reads them back through MLflow.
    """
    import math

    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment_id = client.create_experiment(
        f"{EXPERIMENT}_history", artifact_location=str(folder / "artifacts-history"))
    run_id = client.create_run(experiment_id, run_name="long").info.run_id
    rng = random.Random(1)
    start = int(time.time() * 1000) - points
    db = folder / "mlflow.db"
    with sqlite3.connect(db) as connection:
        for first in range(0, points, INSERT_BATCH):
            rows = []
            for step in range(first, min(points, first + INSERT_BATCH)):
                value = 2.0 * math.exp(-step / (points / 4)) + rng.gauss(0, 0.05)
                rows.append((HISTORY_KEY, value, start + step, run_id, step, 0))
            connection.executemany(
                "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
                "VALUES (?,?,?,?,?,?)", rows)
        connection.execute(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
            "VALUES (?,?,?,?,?,?)", (HISTORY_KEY, rows[-1][1], rows[-1][2], rows[-1][4], 0,
                                     run_id))
    client.set_terminated(run_id)
    return run_id


def check_store(uri: str, runs: int) -> None:
    """MLflow itself must see every run, and the SDK must list them all, page by page."""
    from agentnn.sdk.nn_models import ModelManager

    through_mlflow = ModelManager(uri, direct_reads=False).list_runs(EXPERIMENT, limit=None)
    direct = ModelManager(uri).list_runs(EXPERIMENT, limit=None)
    assert len(through_mlflow) == runs, f"MLflow lists {len(through_mlflow)} of {runs} runs"
    assert [r.run_id for r in direct] == [r.run_id for r in through_mlflow], "readers disagree"


def time_command(command: list[str], env: dict[str, str], repeats: int) -> float:
    """Median wall time of a command in a fresh process; it must succeed."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return statistics.median(times)


def time_call(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_history(folder: Path, uri: str, points: int, repeats: int) -> None:
    """metric_history and plot on one long run, against MLflow's get_metric_history."""
    from mlflow.tracking import MlflowClient

    from agentnn.sdk.nn_models import ModelManager

    started = time.perf_counter()
    run_id = build_long_run(uri, folder, points)
    client = MlflowClient(uri)
    full = client.get_metric_history(run_id, HISTORY_KEY)
    assert len(full) == points, f"MLflow reads {len(full)} of {points} points"
    manager = ModelManager(uri)
    ours = manager.metric_history(run_id, HISTORY_KEY)
    assert len(ours) == points, f"agentnn reads {len(ours)} of {points} points"
    reduced = manager.metric_history(run_id, HISTORY_KEY, max_points=PLOT_POINTS)
    values = [m.value for m in full]
    assert len(reduced) <= PLOT_POINTS
    assert min(p.value for p in reduced) == min(values)
    assert max(p.value for p in reduced) == max(values)
    print(f"\nlong run: {points:,} points of {HISTORY_KEY!r}, built and checked in "
          f"{time.perf_counter() - started:.1f} s")

    plain = time_call(lambda: client.get_metric_history(run_id, HISTORY_KEY), repeats)
    every = time_call(lambda: ModelManager(uri).metric_history(run_id, HISTORY_KEY), repeats)
    downsampled = time_call(lambda: ModelManager(uri).metric_history(
        run_id, HISTORY_KEY, max_points=PLOT_POINTS), repeats)
    print(f"\n{'history, in process':52} {'seconds':>9} {'ratio':>9}")
    print(f"{'MlflowClient.get_metric_history (all points)':52} {plain:8.3f}s {1:8.1f}x")
    print(f"{'mm.metric_history (all points)':52} {every:8.3f}s {plain / every:8.1f}x")
    print(f"{f'mm.metric_history(max_points={PLOT_POINTS})':52} {downsampled:8.3f}s "
          f"{plain / downsampled:8.1f}x")

    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    png = folder / "plot.png"
    ours_s = time_command([str(BIN / "agentnn"), "model", "plot", run_id, "--metric",
                           HISTORY_KEY, "-o", str(png)], env, repeats)
    theirs_s = time_command([sys.executable, "-c", MLFLOW_PLOT_SCRIPT, uri, run_id,
                             HISTORY_KEY, str(folder / "plot-mlflow.png")], env, repeats)
    label = f"plot ({points:,} points; whole command)"
    verdict = "ok" if ours_s < TARGET_PLOT_SECONDS else "over 3 s"
    print(f"\n{'command':52} {'agentnn':>9} {'mlflow':>9} {'ratio':>7}")
    print(f"{label:52} {ours_s:8.2f}s {theirs_s:8.2f}s {theirs_s / ours_s:6.1f}x  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help="0 skips the run queries")
    parser.add_argument("--history-points", type=int, default=HISTORY_POINTS,
                        help="points of the long metric; 0 skips the history rows")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="agentnn-bench-") as tmp:
        folder = Path(tmp)
        if args.runs:
            bench_runs(folder, args.runs, args.repeats)
        if args.history_points:
            uri = f"sqlite:///{folder / 'mlflow.db'}"
            bench_history(folder, uri, args.history_points, args.repeats)


def bench_runs(folder: Path, runs: int, repeats: int) -> None:
    """The read commands and best_run on an experiment of ``runs`` runs."""
    started = time.perf_counter()
    uri, experiment_id = build_store(folder, runs)
    check_store(uri, runs)
    print(f"store: {runs} runs, {METRIC_POINTS} points x 2 metrics each, built and "
          f"checked in {time.perf_counter() - started:.1f} s")

    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    agentnn, mlflow_cli, python = str(BIN / "agentnn"), str(BIN / "mlflow"), sys.executable
    order = "metrics.val_loss ASC"
    finished = "attributes.status = 'FINISHED'"
    some_run = subprocess.run(
        [agentnn, "model", "runs", EXPERIMENT, "--limit", "1", "--output", "csv"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.splitlines()[1].split(",")[0]
    pairs = [
        ("experiments",
         [agentnn, "model", "experiments"],
         [mlflow_cli, "experiments", "search"]),
        ("runs --limit 50",
         [agentnn, "model", "runs", EXPERIMENT, "--limit", "50"],
         [mlflow_cli, "runs", "list", "--experiment-id", experiment_id]),
        ("runs --limit 50 (vs search_runs(max_results=50))",
         [agentnn, "model", "runs", EXPERIMENT, "--limit", "50"],
         [python, "-c", "import mlflow; print(mlflow.search_runs(experiment_ids="
          f"['{experiment_id}'], max_results=50))"]),
        ("best --metric val_loss",
         [agentnn, "model", "best", EXPERIMENT, "--metric", "val_loss"],
         [python, "-c", "import mlflow; print(mlflow.search_runs(experiment_ids="
          f"['{experiment_id}'], filter_string=\"{finished}\", order_by=['{order}'], "
          "max_results=1))"]),
        ("show RUN_ID",
         [agentnn, "model", "show", some_run],
         [mlflow_cli, "runs", "describe", "--run-id", some_run]),
    ]
    print(f"\n{'command':52} {'agentnn':>9} {'mlflow':>9} {'ratio':>7}")
    for label, ours, theirs in pairs:
        ours_s = time_command(ours, env, repeats)
        theirs_s = time_command(theirs, env, repeats)
        ratio = theirs_s / ours_s
        verdict = "ok" if ratio >= TARGET_RATIO else "below 3x"
        print(f"{label:52} {ours_s:8.2f}s {theirs_s:8.2f}s {ratio:6.1f}x  {verdict}")

    import mlflow

    from agentnn.mlflow_integration import ExperimentTracker
    from agentnn.sdk.nn_models import ModelManager

    mlflow.set_tracking_uri(uri)
    mlflow.search_runs(experiment_ids=[experiment_id], max_results=1)  # warm MLflow up
    direct = time_call(lambda: ModelManager(uri).best_run(EXPERIMENT, "val_loss"),
                       repeats)
    through_mlflow = time_call(
        lambda: ModelManager(uri, direct_reads=False).best_run(EXPERIMENT, "val_loss"),
        repeats)
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=uri)
    through_tracker = time_call(lambda: tracker.best_run("val_loss"), repeats)
    plain = time_call(lambda: mlflow.search_runs(
        experiment_ids=[experiment_id], filter_string=finished, order_by=[order],
        max_results=1), repeats)
    print(f"\n{'in process':52} {'seconds':>9} {'ratio':>9}")
    print(f"{'mlflow.search_runs(order_by=…, max_results=1)':52} {plain:8.3f}s {1:8.1f}x")
    print(f"{'mm.best_run (direct SQLite read)':52} {direct:8.3f}s {plain / direct:8.1f}x"
          f"  {'ok' if direct < TARGET_BEST_RUN_SECONDS else 'over 0.5 s'}")
    print(f"{'mm.best_run (through MlflowClient)':52} {through_mlflow:8.3f}s "
          f"{plain / through_mlflow:8.1f}x"
          f"  {'ok' if through_mlflow < TARGET_BEST_RUN_SECONDS else 'over 0.5 s'}")
    print(f"{'ExperimentTracker.best_run':52} {through_tracker:8.3f}s "
          f"{plain / through_tracker:8.1f}x"
          f"  {'ok' if through_tracker < TARGET_BEST_RUN_SECONDS else 'over 0.5 s'}")


if __name__ == "__main__":
    main()
