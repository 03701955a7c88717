"""Points per second from a training run into a team store, by server and by client.

    .venv/bin/python bench/team_throughput.py [--steps 100000] [--slow-steps 5000]

One run of 10 metrics a step, logged in a process of its own, into four stores in one session:
the agentnn app with basic auth (``mlflow server --app-name agentnn``), MLflow's stock basic-auth
server, MLflow's stock server without auth, and ``postgresql://`` direct. Per store, two clients:

- agentnn: ``ExperimentTracker``, timed from the first point logged to the run closed (the
  ``with`` block's exit, which waits until the store has every point);
- MLflow: ``MlflowClient.log_batch`` of 1,000 points a call, MLflow's best batching, timed from
  the first call to ``set_terminated``.

Every point is counted in the store's PostgreSQL tables afterwards. Rows at MLflow's speed
(agentnn on the stock servers, which use MLflow's REST API there, and plain MLflow everywhere)
take ``--slow-steps`` steps: a million points would take minutes per row; the points column
says what each row sent.

It starts its own PostgreSQL cluster (as root, the server runs as the ``postgres`` user in a
folder that user owns) and its servers on free 127.0.0.1 ports, with the helpers the team tests
use (tests/team/team_servers.py), and stops each by its own process id.

Target (issue 26): the agentnn app with auth >= 50,000 points/s on the 1,000,000-point run;
``postgresql://`` direct at least as much.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "team"))
import team_servers as ts

# --- defaults ------------------------------------------------------------------------------
STEPS = 100_000  # x 10 metrics: the 1,000,000-point run of the target
SLOW_STEPS = 5_000  # rows through MLflow's REST API: 50,000 points, tens of seconds each
METRICS = 10
BATCH = 1000  # points per log_batch call (MLflow's limit)
TARGET = 50_000  # points/s, the agentnn app with basic auth
USER, PASSWORD = "bench", "benchPw-4Tq8Lm2x"  # a user who creates (so MANAGEs) its experiments
RUN_TIMEOUT = 3600  # seconds for one row: a guard against a hang, not a measure

AGENTNN_CLIENT = """
import json, sys, time
from agentnn.mlflow_integration import ExperimentTracker

steps, metrics = int(sys.argv[1]), int(sys.argv[2])
tracker = ExperimentTracker(sys.argv[3])
names = [f"m{k}" for k in range(metrics)]
with tracker.start_run(run_name="throughput") as run:
    start = time.perf_counter()
    for step in range(steps):
        run.log_metrics({name: k + step / steps for k, name in enumerate(names)}, step=step)
seconds = time.perf_counter() - start
print(json.dumps({"run_id": run.run_id, "seconds": seconds}))
"""

MLFLOW_CLIENT = """
import json, sys, time
from mlflow import MlflowClient
from mlflow.entities import Metric

steps, metrics, batch = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[4])
client = MlflowClient()
experiment_id = client.create_experiment(sys.argv[3])
run_id = client.create_run(experiment_id).info.run_id
now = int(time.time() * 1000)
points = [Metric(f"m{i % metrics}", (i % metrics) + (i // metrics) / steps, now + i // metrics,
                 i // metrics) for i in range(steps * metrics)]
start = time.perf_counter()
for first in range(0, len(points), batch):
    client.log_batch(run_id, metrics=points[first:first + batch], synchronous=True)
client.set_terminated(run_id)
print(json.dumps({"run_id": run_id, "seconds": time.perf_counter() - start}))
"""


@dataclass
class Store:
    """One store under test: its name, the URI a client uses, its database, and credentials."""

    name: str
    uri: str
    database: str
    credentials: bool = False


@dataclass
class Row:
    store: str
    client: str
    points: int
    stored: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.points / self.seconds


def create_user(url: str) -> None:
    token = base64.b64encode(f"{ts.ADMIN_USER}:{ts.ADMIN_PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        url + "/api/2.0/mlflow/users/create", method="POST",
        data=json.dumps({"username": USER, "password": PASSWORD}).encode(),
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60):
        pass


def start_servers(postgres: ts.Postgres, root: Path, wanted: set[str]
                  ) -> tuple[list[Store], list[subprocess.Popen]]:
    """The servers, started at once (each takes 20 s or more here), and the direct store."""
    specs = [spec for spec in (
        ("agentnn app + auth", "agentnn", True),
        ("stock basic-auth", "basic-auth", True),
        ("stock, no auth", None, False),
    ) if {"agentnn": "app", "basic-auth": "basic-auth", None: "plain"}[spec[1]] in wanted]
    started: dict[str, tuple[subprocess.Popen, str]] = {}
    errors: list[BaseException] = []

    def start(name: str, app: str | None, auth: bool, index: int) -> None:
        database = f"bench_{index}"
        postgres.create_database(database)
        try:
            if auth:
                postgres.create_database(f"{database}_users")
                started[name] = ts.start_mlflow_server(
                    root / database, postgres.url_for_pgpassword(database),
                    auth_database_uri=postgres.url_for_pgpassword(f"{database}_users"),
                    pg_password=ts.PG_PASSWORD, app_name=str(app))
            else:
                started[name] = ts.start_mlflow_server(root / database, postgres.url(database))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start, args=(*spec, i)) for i, spec in enumerate(specs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    processes = [process for process, _ in started.values()]
    if errors:
        for process in processes:
            ts.stop_process_group(process)
        raise errors[0]
    stores = []
    for index, (name, _, auth) in enumerate(specs):
        url = started[name][1]
        if auth:
            create_user(url)
        stores.append(Store(name, url, f"bench_{index}", credentials=auth))
    if "direct" not in wanted:
        return stores, processes
    postgres.create_database("bench_direct")
    direct = postgres.url("bench_direct")
    subprocess.run([sys.executable, "-m", "mlflow", "db", "upgrade", direct], check=True,
                   capture_output=True, timeout=600)
    stores.append(Store("postgresql:// direct", direct, "bench_direct"))
    return stores, processes


def measure(postgres: ts.Postgres, store: Store, client: str, steps: int, work: Path) -> Row:
    """One run through one client into one store, in a process of its own; points counted."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AGENTNN_"))}
    env.update(MLFLOW_TRACKING_URI=store.uri, AGENTNN_OFFLINE="fail",
               AGENTNN_DRAIN_TIMEOUT=str(RUN_TIMEOUT),
               AGENTNN_JOURNAL_DIR=str(work / f"journal-{time.monotonic_ns()}"))
    if store.credentials:
        env.update(MLFLOW_TRACKING_USERNAME=USER, MLFLOW_TRACKING_PASSWORD=PASSWORD)
    code = AGENTNN_CLIENT if client == "agentnn" else MLFLOW_CLIENT
    experiment = f"{client}-{time.monotonic_ns()}"
    result = subprocess.run(
        [sys.executable, "-c", code, str(steps), str(METRICS), experiment, str(BATCH)],
        cwd=work, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    if result.returncode != 0:
        raise RuntimeError(f"{client} into {store.name} failed:\n{result.stderr[-3000:]}")
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    stored = int(postgres.psql(
        f"select count(*) from metrics where run_uuid = '{answer['run_id']}'",
        database=store.database).stdout.strip())
    return Row(store.name, client, steps * METRICS, stored, answer["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS,
                        help="steps of the agentnn rows on the agentnn app and postgresql://")
    parser.add_argument("--slow-steps", type=int, default=SLOW_STEPS,
                        help="steps of the rows through MLflow's REST API")
    parser.add_argument("--stores", default="app,basic-auth,plain,direct",
                        help="which stores to measure, of app, basic-auth, plain, direct")
    args = parser.parse_args()
    wanted = set(args.stores.split(","))
    bin_dir = ts.postgres_bin_dir()
    if bin_dir is None:
        sys.exit("PostgreSQL's server binaries are not installed (initdb, pg_ctl)")
    postgres = ts.start_postgres(bin_dir)
    processes: list[subprocess.Popen] = []
    rows: list[Row] = []
    try:
        with tempfile.TemporaryDirectory(prefix="agentnn-bench-") as folder:
            work = Path(folder)
            stores, processes = start_servers(postgres, postgres.root.parent, wanted)
            for store in stores:
                fast = store.name.startswith(("agentnn", "postgresql"))
                rows.append(measure(postgres, store, "agentnn",
                                    args.steps if fast else args.slow_steps, work))
                print(f"  {rows[-1].store:22} agentnn {rows[-1].rate:>10,.0f} points/s",
                      flush=True)
                rows.append(measure(postgres, store, "mlflow", min(args.slow_steps, args.steps),
                                    work))
                print(f"  {rows[-1].store:22} mlflow  {rows[-1].rate:>10,.0f} points/s",
                      flush=True)
    finally:
        for process in processes:
            ts.stop_process_group(process)
        postgres.stop()
    report(rows)


def report(rows: list[Row]) -> None:
    print()
    print(f"{'store':22} {'client':28} {'points':>10} {'stored':>10} {'points/s':>10}")
    for row in rows:
        client = ("agentnn (whole run)" if row.client == "agentnn"
                  else f"MLflow log_batch of {BATCH:,}")
        print(f"{row.store:22} {client:28} {row.points:>10,} {row.stored:>10,} "
              f"{row.rate:>10,.0f}")
    by = {(row.store, row.client): row for row in rows}
    app = by.get(("agentnn app + auth", "agentnn"))
    stock = by.get(("stock basic-auth", "mlflow"))
    direct = by.get(("postgresql:// direct", "agentnn"))
    print()
    if app and stock:
        print(f"agentnn app + auth / stock basic-auth with log_batch: "
              f"{app.rate / stock.rate:.1f}x")
    if app:
        print(f"agentnn app + auth: {app.rate:,.0f} points/s (target >= {TARGET:,}: "
              f"{'met' if app.rate >= TARGET else 'NOT met'})")
    if direct:
        print(f"postgresql:// direct: {direct.rate:,.0f} points/s")
    lost = [row for row in rows if row.stored != row.points]
    print("every point stored" if not lost else
          "POINTS MISSING: " + ", ".join(f"{r.store}/{r.client} {r.stored}/{r.points}"
                                         for r in lost))


if __name__ == "__main__":
    main()
