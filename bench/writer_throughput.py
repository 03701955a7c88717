"""How fast the writer moves points from a run journal into a SQLite store, by path.

    .venv/bin/python bench/writer_throughput.py [--points 100000] [--metrics 10] [--batch 1000]

For each path (the native bulk path of ``sql_bulk``, and MLflow's ``log_batch``), in the same
process: one embedded SQLite store per path; per measure a new run, a journal of ``--points``
metric points (``--metrics`` keys a step), then the writer in the foreground
(``forward_all(once=True)``, what ``agentnn model sync`` does) until the store has every point.
A second measure sends the same points as ready-made batches, without the journal, to show what
the store path alone costs; a third sends them ``--group`` batches to a transaction
(``sql_bulk.log_batches``).

Each figure is the median of ``--repeats`` measures, each on a fresh store, after one small
journal has gone through the same path: the writer is a long-lived process, which pays its imports
and each store's engine once, not per journal. The first, cold journal of the process is printed
apart (imports included).

Prints points per second per path and the native/log_batch ratio. Target: native >= 100,000
points/s (issue 9).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

# --- defaults ------------------------------------------------------------------------------
POINTS = 100_000  # the log_batch path takes about 15-30 s for these on 2 cores
METRICS_PER_STEP = 10  # as a training loop that logs loss, accuracy, lr, ...
BATCH = 1000  # points per log_batch call (MLflow's limit)
GROUP = 5  # batches per transaction in the grouped measure (log_batches)
TARGET = 100_000  # points/s, native path
REPEATS = 3
WARM_UP_POINTS = 2_000


def fresh_store(folder: Path) -> tuple[str, str]:
    """An empty embedded store with one run; returns (tracking URI, run id)."""
    from mlflow import MlflowClient

    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    run_id = MlflowClient(tracking_uri=uri).create_run("0").info.run_id
    return uri, run_id


def write_journal(journal_dir: Path, uri: str, run_id: str, points: int, n_metrics: int) -> None:
    """A journal as a training run leaves it: metric records appended in chunks."""
    from agentnn.mlflow_integration.journal.buffered import (
        BufferedJournal,
        new_header,
        new_journal_path,
    )
    from agentnn.mlflow_integration.journal.records import MetricRecord

    journal = BufferedJournal(new_journal_path(journal_dir, run_id), new_header(run_id, uri),
                              flush_interval=3600)
    now = int(time.time() * 1000)
    for i in range(points):
        step = i // n_metrics
        journal.add(MetricRecord(f"metric_{i % n_metrics}", 1.0 / (1 + step), now + step, step))
    journal.close()


def stored_points(uri: str) -> int:
    with sqlite3.connect(uri.removeprefix("sqlite:///")) as connection:
        return connection.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]


def run_points(uri: str, run_id: str) -> int:
    with sqlite3.connect(uri.removeprefix("sqlite:///")) as connection:
        return connection.execute("SELECT COUNT(*) FROM metrics WHERE run_uuid = ?",
                                  (run_id,)).fetchone()[0]


def journal_mode(uri: str) -> str:
    with sqlite3.connect(uri.removeprefix("sqlite:///")) as connection:
        return connection.execute("PRAGMA journal_mode").fetchone()[0]


def from_journal(native: bool, points: int, n_metrics: int, uri: str) -> float:
    """Seconds for the writer to send a journal of ``points`` for a new run of store ``uri``."""
    from mlflow import MlflowClient

    from agentnn.mlflow_integration.writer import sql_bulk
    from agentnn.mlflow_integration.writer.loop import forward_all

    sql_bulk.native_path_enabled = native
    run_id = MlflowClient(tracking_uri=uri).create_run("0").info.run_id
    with tempfile.TemporaryDirectory() as folder:
        journal_dir = Path(folder) / "journal"
        write_journal(journal_dir, uri, run_id, points, n_metrics)
        started = time.perf_counter()
        forward_all(journal_dir, once=True)
        elapsed = time.perf_counter() - started
    stored = run_points(uri, run_id)
    if stored != points:
        raise SystemExit(f"the store has {stored} points, expected {points}")
    return elapsed


def from_batches(native: bool, points: int, n_metrics: int, batch: int, group: int = 1) -> float:
    """Seconds to send ready-made batches of ``points`` (no journal), ``group`` a transaction."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from agentnn.mlflow_integration.writer import sql_bulk

    sql_bulk.native_path_enabled = native
    with tempfile.TemporaryDirectory() as folder:
        uri, run_id = fresh_store(Path(folder))
        client = MlflowClient(tracking_uri=uri)
        now = int(time.time() * 1000)
        metrics = [Metric(f"metric_{i % n_metrics}", 1.0 / (1 + i // n_metrics),
                          now + i // n_metrics, i // n_metrics) for i in range(points)]
        batches = [sql_bulk.RunBatch(run_id, metrics[start:start + batch])
                   for start in range(0, points, batch)]
        started = time.perf_counter()
        for first in range(0, len(batches), group):
            sql_bulk.log_batches(client, uri, batches[first:first + group],
                                 report=lambda _message: None)
        elapsed = time.perf_counter() - started
        if stored_points(uri) != points:
            raise SystemExit(f"the store has {stored_points(uri)} points, expected {points}")
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=POINTS)
    parser.add_argument("--metrics", type=int, default=METRICS_PER_STEP)
    parser.add_argument("--batch", type=int, default=BATCH, help="points per batch (no journal)")
    parser.add_argument("--group", type=int, default=GROUP,
                        help="batches per transaction for the grouped native measure")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        rows = []
        for native in (True, False):
            # One store per path, as a writer keeps sending to its store: a new run each measure.
            uri, _ = fresh_store(Path(folder) / ("native" if native else "log_batch"))
            if native:
                cold = from_journal(native, args.points, args.metrics, uri)
            from_journal(native, WARM_UP_POINTS, args.metrics, uri)
            seconds = statistics.median(from_journal(native, args.points, args.metrics, uri)
                                        for _ in range(args.repeats))
            batches = statistics.median(
                from_batches(native, args.points, args.metrics, args.batch)
                for _ in range(args.repeats))
            rows.append(("native" if native else "log_batch", seconds, batches, journal_mode(uri)))

    print(f"\n{args.points:,} points, {args.metrics} metrics a step, SQLite store, medians of "
          f"{args.repeats}\n")
    print(f"{'path':<10} {'journal->store pts/s':>21} {'batches->store pts/s':>21} "
          f"{'store mode':>11}")
    for name, seconds, batches, mode in rows:
        print(f"{name:<10} {args.points / seconds:>21,.0f} {args.points / batches:>21,.0f} "
              f"{mode:>11}")
    (_, native_s, native_b, _), (_, plain_s, plain_b, _) = rows
    print(f"{'ratio':<10} {plain_s / native_s:>20.1f}x {plain_b / native_b:>20.1f}x")
    grouped = from_batches(True, args.points, args.metrics, args.batch, args.group)
    print(f"\nnative, {args.group} batches a transaction (batches->store): "
          f"{args.points / grouped:,.0f} points/s, {native_b / grouped:.2f}x one batch a "
          "transaction")
    print(f"native journal->store, the process's first journal (imports included): "
          f"{args.points / cold:,.0f} points/s")
    verdict = "meets" if args.points / native_s >= TARGET else "misses"
    print(f"\nnative journal->store {args.points / native_s:,.0f} points/s {verdict} the "
          f"target of {TARGET:,}")


if __name__ == "__main__":
    main()
