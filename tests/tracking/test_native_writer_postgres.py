"""On PostgreSQL too, the native bulk path stores exactly what MLflow's log_batch stores.

The same seeded random batches (duplicates, NaN and ±inf, out-of-order steps, re-sent batches,
changed params, tag overwrites) go natively into one database of a real PostgreSQL cluster and
through ``log_batch`` into another; the tables are compared row by row. Skipped when the
PostgreSQL server binaries are not installed (the cluster helpers are the team tests').
"""

from __future__ import annotations

import importlib.util
import math
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from agentnn.mlflow_integration.writer import sql_bulk

pytestmark = [pytest.mark.team, pytest.mark.timeout(600)]

BATCHES = 80
VALUES = [0.0, -0.0, 1.0, 2.5, math.nan, math.inf, -math.inf, 1.7976931348623157e308]
TABLES = {
    "metrics": "key, value, timestamp, step, is_nan, run_uuid",
    "latest_metrics": "key, value, timestamp, step, is_nan, run_uuid",
    "params": "key, value, run_uuid",
    "tags": "key, value, run_uuid",
}


def team_servers() -> ModuleType:
    """tests/team/team_servers.py, which starts and stops a PostgreSQL cluster."""
    path = Path(__file__).parents[1] / "team" / "team_servers.py"
    spec = importlib.util.spec_from_file_location("team_servers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("team_servers", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    servers = team_servers()
    bin_dir = servers.postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("the PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    running = servers.start_postgres(bin_dir)
    try:
        yield running
    finally:
        running.stop()


def random_batches(seed: int) -> list[dict]:
    rng = random.Random(seed)
    batches: list[dict] = []
    for _ in range(BATCHES):
        batches.append({
            "run": rng.randrange(2),
            "metrics": [(rng.choice(["loss", "acc"]), rng.choice(VALUES), rng.randrange(2),
                         rng.randrange(-1, 3)) for _ in range(rng.randrange(12))],
            "params": [(key, rng.choice(["a", "b"]))
                       for key in rng.sample(["p1", "p2", "p3"], rng.randrange(3))],
            "tags": [(rng.choice(["t1", "t2"]), rng.choice(["x", "y"]))
                     for _ in range(rng.randrange(3))],
        })
        if rng.random() < 0.2:  # a batch sent again, as after a writer crash
            batches.append(rng.choice(batches))
    return batches


def table_rows(uri: str, runs: list[str]) -> dict[str, list[tuple]]:
    import sqlalchemy

    number = {run_id: i for i, run_id in enumerate(runs)}
    engine = sqlalchemy.create_engine(uri)
    try:
        with engine.connect() as connection:
            return {
                table: sorted(
                    tuple(row[:-1]) + (number[row[-1]],)
                    for row in connection.exec_driver_sql(f"SELECT {columns} FROM {table}")
                )
                for table, columns in TABLES.items()
            }
    finally:
        engine.dispose()


def test_native_batches_on_postgresql_store_the_same_rows_as_log_batch(cluster) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException

    uris = [cluster.create_database("native_path"), cluster.create_database("log_batch_path")]
    clients = [MlflowClient(tracking_uri=uri) for uri in uris]
    runs = [[client.create_run("0", run_name=f"run{i}").info.run_id for i in range(2)]
            for client in clients]
    messages: list[str] = []
    native_batches = 0
    for batch in random_batches(seed=9):
        sent = ([Metric(*metric) for metric in batch["metrics"]],
                [Param(*param) for param in batch["params"]],
                [RunTag(*tag) for tag in batch["tags"]])
        outcomes = []
        for side in (0, 1):
            try:
                if side == 0:
                    path = sql_bulk.log_batch(clients[0], uris[0], runs[0][batch["run"]], *sent,
                                              report=messages.append)
                    native_batches += path == sql_bulk.NATIVE
                else:
                    clients[1].log_batch(runs[1][batch["run"]], *sent)
                outcomes.append(None)
            except MlflowException as error:
                outcomes.append(error.error_code)
        assert outcomes[0] == outcomes[1], batch
    assert "native path" in messages[0]
    assert native_batches > BATCHES // 3
    assert table_rows(uris[0], runs[0]) == table_rows(uris[1], runs[1])

    grouped = [sql_bulk.RunBatch(runs[0][i % 2], [Metric("grouped", float(i), 5, i)])
               for i in range(6)]
    assert sql_bulk.log_batches(clients[0], uris[0], grouped) == sql_bulk.NATIVE


def test_points_written_in_two_transactions_at_once_and_sent_again_are_stored_once(
    cluster,
) -> None:
    """Twelve thousand points go in :data:`sql_bulk.IN_FLIGHT` transactions at once; ten
    thousand of them sent again (as after a writer crash, again in two) store nothing twice:
    the tables hold what log_batch stores."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    uris = [cluster.create_database("parts_native"), cluster.create_database("parts_log_batch")]
    clients = [MlflowClient(tracking_uri=uri) for uri in uris]
    runs = [[client.create_run("0", run_name="parts").info.run_id] for client in clients]
    points = [Metric(f"m{i % 3}", float(i % 7), 1000 + i // 3, i // 3) for i in range(12_000)]
    batches = [sql_bulk.RunBatch(runs[0][0], points[first:first + 1000])
               for first in range(0, len(points), 1000)]
    assert sum(len(batch.metrics) for batch in batches) >= sql_bulk.IN_FLIGHT * sql_bulk.MIN_PART
    assert sql_bulk.log_batches(clients[0], uris[0], batches) == sql_bulk.NATIVE
    assert sql_bulk.log_batches(clients[0], uris[0], batches[2:]) == sql_bulk.NATIVE
    for first in range(0, len(points), 1000):
        clients[1].log_batch(runs[1][0], metrics=points[first:first + 1000])
    native, expected = table_rows(uris[0], runs[0]), table_rows(uris[1], runs[1])
    assert len(native["metrics"]) == len(points)
    assert native == expected
