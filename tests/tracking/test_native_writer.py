"""The writer's native bulk path stores exactly what MLflow's log_batch stores.

Differential: the same random batches (duplicates, NaN and ±inf, out-of-order steps, re-sent
batches, changed params, tag overwrites) go through the native path into one fresh SQLite store
and through ``MlflowClient.log_batch`` into another; every table the batches touch is then
compared row by row, with run ids mapped by creation order.
"""

from __future__ import annotations

import math
import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agentnn.mlflow_integration.writer import sql_bulk

pytestmark = pytest.mark.timeout(600)

RUNS = 2
TABLES = {
    "metrics": "key, value, timestamp, step, is_nan, run_uuid",
    "latest_metrics": "key, value, timestamp, step, is_nan, run_uuid",
    "params": "key, value, run_uuid",
    "tags": "key, value, run_uuid",
}

# Small pools, so that duplicates, re-logged keys and ties are common.
VALUES = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, 2.5, -3.0, math.nan, math.inf, -math.inf,
                     1.7976931348623157e308, -1.7976931348623157e308]),
    st.floats(-10, 10, allow_nan=False),
)
METRICS = st.tuples(st.sampled_from(["loss", "acc"]), VALUES,
                    st.integers(0, 1), st.integers(-1, 2))
PARAMS = st.tuples(st.sampled_from(["p1", "p2", "p3"]), st.sampled_from(["a", "b", 1]))
TAGS = st.tuples(st.sampled_from(["t1", "t2", "mlflow.note.content"]),
                 st.sampled_from(["x", "y", ""]))
BATCH = st.fixed_dictionaries({
    "run": st.integers(0, RUNS - 1),
    "metrics": st.lists(METRICS, max_size=12),
    "params": st.lists(PARAMS, max_size=2),
    "tags": st.lists(TAGS, max_size=3),
})
# A step is a new batch, or a batch sent again (what a writer does after a crash).
STEPS = st.lists(st.one_of(BATCH, st.integers(0, 20)), min_size=1, max_size=8)
# Ties that only the order of a batch decides: NaN is stored as 0.0, +inf as the largest float.
TIES = [{"run": 0, "metrics": [("loss", math.nan, 1, 1), ("loss", 0.0, 1, 1),
                               ("acc", 0.0, 1, 1), ("acc", math.nan, 1, 1),
                               ("lr", math.inf, 1, 1), ("lr", 1.7976931348623157e308, 1, 1)],
         "params": [("p1", "a")], "tags": [("t1", "x"), ("t1", "y")]},
        {"run": 0, "metrics": [("loss", 0.0, 1, 1), ("acc", math.nan, 0, 1)],
         "params": [("p1", "a")], "tags": [("t1", "x")]},
        0]
DIFFERENTIAL = settings(max_examples=20, deadline=None,
                        suppress_health_check=[HealthCheck.function_scoped_fixture])


class TwinStores:
    """Two fresh copies of the empty store with the same runs, one per path."""

    def __init__(self, template: Path, folder: Path) -> None:
        from mlflow import MlflowClient

        self.uris, self.clients, self.runs = [], [], []
        for name in ("native", "log_batch"):
            path = folder / f"{name}.db"
            shutil.copyfile(template, path)
            uri = f"sqlite:///{path}"
            client = MlflowClient(tracking_uri=uri)
            self.uris.append(uri)
            self.clients.append(client)
            self.runs.append([client.create_run("0", run_name=f"run{i}").info.run_id
                              for i in range(RUNS)])

    def rows(self, side: int) -> dict[str, list[tuple]]:
        """Every row of the tables log_batch writes, run ids replaced by run numbers."""
        number = {run_id: i for i, run_id in enumerate(self.runs[side])}
        path = self.uris[side].removeprefix("sqlite:///")
        with sqlite3.connect(path) as connection:
            return {
                table: sorted(
                    row[:-1] + (number[row[-1]],)
                    for row in connection.execute(f"SELECT {columns} FROM {table}")
                )
                for table, columns in TABLES.items()
            }


def entities(batch: dict) -> tuple[list, list, list]:
    from mlflow.entities import Metric, Param, RunTag

    return ([Metric(key, value, timestamp, step)
             for key, value, timestamp, step in batch["metrics"]],
            [Param(key, value) for key, value in batch["params"]],
            [RunTag(key, value) for key, value in batch["tags"]])


def resolve(steps: Sequence[dict | int]) -> list[dict]:
    """Turn "send batch k again" steps into the batches they repeat."""
    batches: list[dict] = []
    for step in steps:
        if isinstance(step, int):
            if batches:
                batches.append(batches[step % len(batches)])
        else:
            batches.append(step)
    return batches


def outcome(call) -> int | None:  # a zero-argument callable
    """None when the call stored its batch, else MLflow's error code."""
    from mlflow.exceptions import MlflowException

    try:
        call()
    except MlflowException as error:
        return error.error_code
    return None


@DIFFERENTIAL
@given(steps=STEPS)
@example(steps=TIES)
def test_native_batches_store_the_same_rows_as_log_batch(
    template_store: Path, steps: list[dict | int]
) -> None:
    messages: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        twins = TwinStores(template_store, Path(folder))
        for batch in resolve(steps):
            metrics, params, tags = entities(batch)
            native_run, reference_run = twins.runs[0][batch["run"]], twins.runs[1][batch["run"]]
            paths: list[str] = []

            def send_native(run_id: str = native_run, sent: tuple = (metrics, params, tags),
                            paths: list[str] = paths) -> None:
                paths.append(sql_bulk.log_batch(twins.clients[0], twins.uris[0], run_id, *sent,
                                                report=messages.append))

            def send_reference(run_id: str = reference_run,
                               sent: tuple = (metrics, params, tags)) -> None:
                twins.clients[1].log_batch(run_id, *sent)

            native, reference = outcome(send_native), outcome(send_reference)
            assert native == reference
            if reference is None:  # every batch log_batch takes, the native path takes too
                assert paths == [sql_bulk.NATIVE], messages
        assert twins.rows(0) == twins.rows(1)


@DIFFERENTIAL
@given(steps=STEPS)
@example(steps=TIES)
def test_one_transaction_for_several_runs_stores_what_log_batch_stores(
    template_store: Path, steps: list[dict | int]
) -> None:
    messages: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        twins = TwinStores(template_store, Path(folder))
        batches = resolve(steps)
        grouped = [
            sql_bulk.RunBatch(twins.runs[0][batch["run"]], *entities(batch)) for batch in batches
        ]
        # On any failure the group goes through log_batch batch by batch, up to the first error.
        paths: list[str] = []
        grouped_outcome = outcome(lambda: paths.append(sql_bulk.log_batches(
            twins.clients[0], twins.uris[0], grouped, report=messages.append)))
        reference_outcome = None
        for batch in batches:
            reference_outcome = outcome(lambda batch=batch: twins.clients[1].log_batch(
                twins.runs[1][batch["run"]], *entities(batch)))
            if reference_outcome is not None:
                break
        assert grouped_outcome == reference_outcome
        if reference_outcome is None:
            assert paths == [sql_bulk.NATIVE], messages
        assert twins.rows(0) == twins.rows(1)


def test_a_changed_param_is_refused_with_mlflows_error_and_nothing_of_the_batch_stays(
    template_store: Path, tmp_path: Path
) -> None:
    from mlflow.entities import Metric, Param
    from mlflow.exceptions import MlflowException

    twins = TwinStores(template_store, tmp_path)
    uri, run = twins.uris[0], twins.runs[0][0]
    engine = sql_bulk.engine_for(uri)
    sql_bulk.write_batches(engine, [sql_bulk.RunBatch(run, params=[Param("lr", "0.1")])])
    with pytest.raises(MlflowException, match="Changing param values is not allowed"):
        sql_bulk.write_batches(engine, [sql_bulk.RunBatch(
            run, metrics=[Metric("loss", 1.0, 1, 1)], params=[Param("lr", "0.2")])])
    rows = twins.rows(0)
    assert rows["params"] == [("lr", "0.1", 0)]
    assert rows["metrics"] == []


def test_a_deleted_run_is_refused_as_log_batch_refuses_it(
    template_store: Path, tmp_path: Path
) -> None:
    from mlflow.entities import Metric
    from mlflow.exceptions import MlflowException

    twins = TwinStores(template_store, tmp_path)
    client, uri, run = twins.clients[0], twins.uris[0], twins.runs[0][0]
    client.delete_run(run)
    with pytest.raises(MlflowException, match="must be in the 'active' state"):
        sql_bulk.write_batches(sql_bulk.engine_for(uri),
                               [sql_bulk.RunBatch(run, metrics=[Metric("loss", 1.0, 1, 1)])])
    with pytest.raises(MlflowException, match="must be in the 'active' state"):
        sql_bulk.log_batch(client, uri, run, [Metric("loss", 1.0, 1, 1)], report=lambda _: None)
    assert twins.rows(0)["metrics"] == []
