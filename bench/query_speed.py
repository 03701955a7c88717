"""How fast `agentnn model` answers on a big experiment, against plain MLflow doing the same.

Run by hand (not in CI)::

    .venv/bin/python bench/query_speed.py            # 10,000 runs, a 1,000,000-point metric
    .venv/bin/python bench/query_speed.py --runs 2000 --history-points 50000 --repeats 1
    .venv/bin/python bench/query_speed.py --runs 0   # only the long-history rows
    .venv/bin/python bench/query_speed.py --server   # the team server: the agentnn app


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

``--server`` measures the team path instead: it starts a PostgreSQL cluster of its own (as the
``postgres`` system user when run as root, since PostgreSQL refuses root) and ``mlflow server
--app-name agentnn`` with basic auth on a free 127.0.0.1 port, puts the same N runs into both
that server's database and an embedded SQLite store with bulk SQL (filling 10,000 runs through
the REST API would take many minutes and is not what is measured), checks through MLflow's REST
API that the server lists them all, then times ``agentnn model experiments``, ``runs``,
``best`` and ``show`` as whole commands in fresh processes: on the embedded store, on the
server (signed in as a user, through the app's fast reads), and MLflow's own CLI on the same
server where it has a counterpart; the three run in turn, one of each per round after an
untimed round, and the medians are printed. Targets: each command through the app at most 1.5x its
embedded-store time, and faster than MLflow's CLI.
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
from dataclasses import dataclass, field
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
TARGET_APP_VS_EMBEDDED = 1.5  # --server: a command through the app vs on the embedded store
BENCH_USER, BENCH_PASSWORD = "bench", "benchPw-8k2Lq7Zr"  # --server: who reads (12+ chars)
TEAM_TESTS = Path(__file__).resolve().parents[1] / "tests" / "team"  # the cluster and server
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


@dataclass
class Rows:
    """The rows of N runs in MLflow's tables, as bulk inserts want them."""

    runs: list[dict[str, object]] = field(default_factory=list)
    params: list[dict[str, object]] = field(default_factory=list)
    tags: list[dict[str, object]] = field(default_factory=list)
    metrics: list[dict[str, object]] = field(default_factory=list)
    latest: list[dict[str, object]] = field(default_factory=list)


def make_rows(runs: int, experiment_id: str, artifact_root: str) -> Rows:
    """N finished-or-failed runs: three params, a run-name tag, two metrics of a few points."""
    rng = random.Random(0)
    now = int(time.time() * 1000) - runs * 1000
    rows = Rows()
    for index in range(runs):
        run_id = uuid.uuid4().hex
        start = now + index * 1000
        status = "FAILED" if index % 50 == 0 else "FINISHED"
        rows.runs.append(dict(
            run_uuid=run_id, name=f"run-{index}", source_type="LOCAL", source_name="",
            entry_point_name="", user_id="bench", status=status, start_time=start,
            end_time=start + 900, source_version="", lifecycle_stage="active",
            artifact_uri=f"{artifact_root}/{run_id}/artifacts", experiment_id=int(experiment_id)))
        for key, value in (("lr", rng.choice([1e-4, 1e-3, 1e-2])),
                           ("batch_size", rng.choice([16, 32, 64])), ("layers", rng.randint(1, 4))):
            rows.params.append(dict(key=key, value=str(value), run_uuid=run_id))
        rows.tags.append(dict(key="mlflow.runName", value=f"run-{index}", run_uuid=run_id))
        for key in ("val_loss", "train_loss"):
            value = rng.uniform(0.1, 2.0)
            for step in range(METRIC_POINTS):
                value *= rng.uniform(0.8, 1.0)
                rows.metrics.append(dict(key=key, value=value, timestamp=start + step,
                                         run_uuid=run_id, step=step, is_nan=False))
            rows.latest.append(dict(key=key, value=value, timestamp=start + METRIC_POINTS - 1,
                                    step=METRIC_POINTS - 1, is_nan=False, run_uuid=run_id))
    return rows


def insert_rows(connection, rows: Rows) -> None:  # a SQLAlchemy connection, in a transaction
    """Bulk inserts into MLflow's own tables (SQLAlchemy batches them per dialect)."""
    from sqlalchemy import text

    for table, items in (("runs", rows.runs), ("params", rows.params), ("tags", rows.tags),
                         ("metrics", rows.metrics), ("latest_metrics", rows.latest)):
        columns = list(items[0])
        connection.execute(text(
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join(':' + column for column in columns)})"), items)


def build_store(folder: Path, runs: int, rows: Rows | None = None) -> tuple[str, str]:
    """A store of ``runs`` finished-or-failed runs; returns (tracking URI, experiment id).

    MLflow creates the schema and the experiment; the runs go in with bulk inserts into
    MLflow's own tables, because building the fixture is not what is measured (logging 10,000
    runs through the API would take many minutes here). ``rows`` puts those exact runs in.
    """
    from mlflow.tracking import MlflowClient
    from sqlalchemy import create_engine

    db = folder / "mlflow.db"
    uri = f"sqlite:///{db}"
    experiment_id = MlflowClient(uri).create_experiment(
        EXPERIMENT, artifact_location=str(folder / "artifacts")
    )
    rows = rows or make_rows(runs, experiment_id, str(folder / "artifacts"))
    for run in rows.runs:
        run["experiment_id"] = int(experiment_id)
    engine = create_engine(uri)
    with engine.begin() as connection:
        insert_rows(connection, rows)
    engine.dispose()
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


def time_command(command: list[str], env: dict[str, str], repeats: int,
                 warm_up: bool = False) -> float:
    """Median wall time of a command in a fresh process; it must succeed. ``warm_up`` runs it
    once untimed first (bytecode written, the server's password check cached), as a user's
    second command finds things."""
    if warm_up:
        subprocess.run(command, env=env, capture_output=True, text=True)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return statistics.median(times)


def time_in_turn(ways: list[tuple[list[str], dict[str, str]]], repeats: int) -> list[float]:
    """Median wall time of each command, run in turn (one of each per round, after one untimed
    round), so a burst of load on a shared machine falls on all of them alike."""
    for command, env in ways:
        time_command(command, env, 1)
    times: list[list[float]] = [[] for _ in ways]
    for _ in range(repeats):
        for index, (command, env) in enumerate(ways):
            times[index].append(time_command(command, env, 1))
    return [statistics.median(each) for each in times]


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


def start_team_server(folder: Path):
    """PostgreSQL and ``mlflow server --app-name agentnn`` with basic auth, as the team tests
    start them (tests/team/team_servers.py); returns (cluster, server process, URL, database
    URL). Both are stopped by their own process ids."""
    sys.path.insert(0, str(TEAM_TESTS))
    import team_servers as ts

    bin_dir = ts.postgres_bin_dir()
    if bin_dir is None:
        raise SystemExit("--server needs the PostgreSQL server binaries (initdb, pg_ctl) in one "
                         f"of {', '.join(ts.PG_VERSION_DIRS)}")
    cluster = ts.start_postgres(bin_dir)
    try:
        tracking = cluster.create_database("bench_tracking")
        cluster.create_database("bench_users")
        process, url = ts.start_mlflow_server(
            folder / "server", cluster.url_for_pgpassword("bench_tracking"),
            auth_database_uri=cluster.url_for_pgpassword("bench_users"),
            pg_password=ts.PG_PASSWORD, app_name="agentnn")
    except BaseException:
        cluster.stop()
        raise
    return cluster, process, url, tracking, ts


def bench_server(folder: Path, runs: int, repeats: int) -> None:
    """The read commands on the team server through the agentnn app, against the embedded
    store with the same runs and against MLflow's CLI on the same server."""
    import base64
    import json
    import urllib.request

    from sqlalchemy import create_engine

    started = time.perf_counter()
    cluster, process, url, tracking, ts = start_team_server(folder)
    try:
        admin = "Basic " + base64.b64encode(
            f"{ts.ADMIN_USER}:{ts.ADMIN_PASSWORD}".encode()).decode()
        request = urllib.request.Request(
            url + "/api/2.0/mlflow/users/create", method="POST",
            data=json.dumps({"username": BENCH_USER, "password": BENCH_PASSWORD}).encode(),
            headers={"Authorization": admin, "Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=60).close()
        # Commands run as on a user's machine: Python writes and reuses its bytecode (a
        # PYTHONDONTWRITEBYTECODE here would compile every imported module on every command).
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("MLFLOW_", "AGENTNN_")) and k != "PYTHONDONTWRITEBYTECODE"}
        server_env = {**env, "MLFLOW_TRACKING_URI": url, "MLFLOW_TRACKING_USERNAME": BENCH_USER,
                      "MLFLOW_TRACKING_PASSWORD": BENCH_PASSWORD}
        from mlflow.tracking import MlflowClient

        os.environ.update(MLFLOW_TRACKING_USERNAME=BENCH_USER,
                          MLFLOW_TRACKING_PASSWORD=BENCH_PASSWORD)
        experiment_id = MlflowClient(url).create_experiment(EXPERIMENT)  # the user's MANAGE
        rows = make_rows(runs, experiment_id, f"mlflow-artifacts:/{experiment_id}")
        engine = create_engine(tracking)
        with engine.begin() as connection:
            insert_rows(connection, rows)
        engine.dispose()
        local_rows = Rows(runs=[{**run, "artifact_uri": str(folder / "artifacts" / run[
            "run_uuid"])} for run in rows.runs], params=rows.params, tags=rows.tags,
            metrics=rows.metrics, latest=rows.latest)
        local_uri, _ = build_store(folder, runs, local_rows)
        listed = MlflowClient(url).search_runs([experiment_id], max_results=50_000)
        assert len(listed) == runs, f"MLflow's REST API lists {len(listed)} of {runs} runs"
        print(f"team server: PostgreSQL, mlflow server --app-name agentnn with basic auth; "
              f"{runs} runs there and in the embedded store, built and checked in "
              f"{time.perf_counter() - started:.1f} s")

        agentnn, mlflow_cli = str(BIN / "agentnn"), str(BIN / "mlflow")
        some_run = rows.runs[len(rows.runs) // 2]["run_uuid"]
        commands = [
            ("experiments", ["model", "experiments"],
             [mlflow_cli, "experiments", "search"]),
            ("runs --limit 50", ["model", "runs", EXPERIMENT, "--limit", "50"],
             [mlflow_cli, "runs", "list", "--experiment-id", experiment_id]),
            ("best --metric val_loss", ["model", "best", EXPERIMENT, "--metric", "val_loss"],
             None),
            ("show RUN_ID", ["model", "show", some_run],
             [mlflow_cli, "runs", "describe", "--run-id", some_run]),
        ]
        local_env = {**env, "MLFLOW_TRACKING_URI": local_uri}
        print(f"\n{'command (whole, fresh process)':32} {'embedded':>9} {'app':>9} "
              f"{'mlflow':>9} {'app/emb':>8} {'mlflow/app':>10}")
        for label, args, theirs in commands:
            ways = [([agentnn, *args], local_env), ([agentnn, *args], server_env)]
            if theirs:
                ways.append((theirs, server_env))
            embedded_s, app_s, *rest = time_in_turn(ways, repeats)
            theirs_s = rest[0] if rest else None
            ratio = app_s / embedded_s
            verdicts = ["ok" if ratio <= TARGET_APP_VS_EMBEDDED else "over 1.5x"]
            if theirs_s is not None:
                verdicts.append("faster" if app_s < theirs_s else "not faster than mlflow")
            mlflow_time = f"{theirs_s:8.2f}s" if theirs_s is not None else f"{'-':>9}"
            mlflow_ratio = f"{theirs_s / app_s:9.1f}x" if theirs_s is not None else f"{'-':>10}"
            print(f"{label:32} {embedded_s:8.2f}s {app_s:8.2f}s {mlflow_time} {ratio:7.2f}x "
                  f"{mlflow_ratio}  {', '.join(verdicts)}")
    finally:
        ts.stop_process_group(process)
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help="0 skips the run queries")
    parser.add_argument("--history-points", type=int, default=HISTORY_POINTS,
                        help="points of the long metric; 0 skips the history rows")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--server", action="store_true",
                        help="the team server instead: the agentnn app on PostgreSQL with auth")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="agentnn-bench-") as tmp:
        folder = Path(tmp)
        if args.server:
            os.chmod(folder, 0o755)  # the server's folder inside; PostgreSQL's is elsewhere
            bench_server(folder, args.runs or RUNS, args.repeats)
            return
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
