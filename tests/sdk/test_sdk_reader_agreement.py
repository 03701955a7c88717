"""The direct SQLite reader and MLflow agree on every answer, and the reader knows its limits.

A store with runs of every kind (NaN and missing metrics, shared start times, failed, running
and deleted runs) is searched with random filters and orderings from the subset the direct
reader serves; each answer must equal MLflow's, run for run and value for value. The reader
serves only schema revisions it was tested against and leaves workspaces to MLflow.
"""

from __future__ import annotations

import logging
import math
import random
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentnn.sdk import _search, _sqlite_reader
from agentnn.sdk.nn_models import ModelManager

LRS = ["0.001", "0.01", "0.1", "1e-4"]
STAGES = ["dev", "prod", "[/x]"]
STATUSES = ["FINISHED", "FAILED", "RUNNING", "KILLED"]
METRICS = ["loss", "acc", "never"]
BASE_TIME = 1_700_000_000_000


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, template_store: Path) -> dict:
    """Two experiments, 30 runs of mixed kinds, written through MLflow's own client."""
    import mlflow

    path = tmp_path_factory.mktemp("agreement") / "store.db"
    shutil.copyfile(template_store, path)
    uri = f"sqlite:///{path}"
    client = mlflow.MlflowClient(uri)
    rng = random.Random(7)
    experiments = [client.create_experiment("alpha"), client.create_experiment("beta")]
    for index in range(30):
        experiment_id = experiments[index % 2]
        start = BASE_TIME + (index // 3) * 1000  # three runs share each start time
        run = client.create_run(experiment_id, start_time=start, run_name=f"run-{index % 7}")
        run_id = run.info.run_id
        if index % 5:
            client.log_param(run_id, "lr", rng.choice(LRS))
        if index % 4:
            client.set_tag(run_id, "stage", rng.choice(STAGES))
        for step in range(rng.randint(0, 3)):
            loss = float("nan") if index % 9 == 0 else round(rng.uniform(0, 2), 2)
            client.log_metric(run_id, "loss", loss, step=step, timestamp=start + step)
            if index % 3:
                client.log_metric(run_id, "acc", round(rng.uniform(0, 1), 1), step=step,
                                  timestamp=start + step)
        status = STATUSES[index % 4]
        if status != "RUNNING":
            client.set_terminated(run_id, status=status, end_time=start + 500 + index)
        if index % 11 == 10:
            client.delete_run(run_id)
    return {"uri": uri, "direct": ModelManager(uri),
            "mlflow": ModelManager(uri, direct_reads=False)}


def quoted(value: str) -> str:
    return "'" + value + "'"


clauses = st.one_of(
    st.builds(lambda key, op, value: f"metrics.{key} {op} {value}",
              st.sampled_from(METRICS), st.sampled_from(_search.COMPARATORS),
              st.sampled_from([0, 0.5, 1, 1.5, -1])),
    st.builds(lambda op, value: f"params.lr {op} {quoted(value)}",
              st.sampled_from(["=", "!="]), st.sampled_from(LRS + ["none"])),
    st.builds(lambda op, value: f"tags.stage {op} {quoted(value)}",
              st.sampled_from(["=", "!="]), st.sampled_from(STAGES)),
    st.builds(lambda op, value: f"attributes.status {op} {quoted(value)}",
              st.sampled_from(["=", "!="]), st.sampled_from(STATUSES)),
    st.builds(lambda op, value: f"attributes.run_name {op} {quoted(value)}",
              st.sampled_from(["=", "!="]), st.sampled_from(["run-1", "run-3", "x"])),
    st.builds(lambda op, offset: f"attributes.start_time {op} {BASE_TIME + offset}",
              st.sampled_from(_search.COMPARATORS), st.sampled_from([0, 3000, 5000, 20000])),
)
order_terms = st.sampled_from([
    "metrics.loss", "metrics.acc", "metrics.never", "params.lr", "tags.stage",
    "attributes.start_time", "attributes.end_time", "attributes.status",
    "attributes.run_name",
])
orders = st.lists(
    st.builds(lambda term, direction: f"{term}{direction}", order_terms,
              st.sampled_from(["", " ASC", " DESC"])),
    max_size=2, unique_by=lambda clause: clause.split()[0],
)


def summary(runs: list) -> list[tuple]:
    """What a listing shows, with NaN made comparable."""
    def plain(metrics: dict) -> dict:
        return {key: "nan" if math.isnan(value) else value for key, value in metrics.items()}

    return [(run.run_id, run.run_name, run.status, run.start_time_ms, run.end_time_ms,
             plain(run.metrics), run.params, run.tags, run.lifecycle_stage) for run in runs]


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    conditions=st.lists(clauses, max_size=3),
    order_by=orders,
    limit=st.one_of(st.none(), st.integers(min_value=1, max_value=12)),
    experiment=st.sampled_from([None, "alpha", "beta"]),
    include_deleted=st.booleans(),
)
def test_fast_reader_and_mlflow_agree_on_random_searches(
    store, conditions, order_by, limit, experiment, include_deleted
):
    filter_string = " and ".join(conditions) or None
    assert _search.parse_filter(filter_string) is not None  # the direct reader serves it
    assert _search.parse_order_by(order_by) is not None
    answers = [
        store[reader].list_runs(experiment, filter=filter_string, order_by=order_by,
                                limit=limit, include_deleted=include_deleted)
        for reader in ("direct", "mlflow")
    ]
    assert summary(answers[0]) == summary(answers[1])


def test_experiments_runs_and_histories_agree(store):
    direct, through_mlflow = store["direct"], store["mlflow"]
    assert ([e.to_dict() for e in direct.list_experiments(include_deleted=True)]
            == [e.to_dict() for e in through_mlflow.list_experiments(include_deleted=True)])
    for run in through_mlflow.list_runs(limit=None, include_deleted=True):
        assert summary([direct.get_run(run.run_id).run]) == summary(
            [through_mlflow.get_run(run.run_id).run])
        for key in run.metrics:
            assert ([repr(p) for p in direct.metric_history(run.run_id, key)]
                    == [repr(p) for p in through_mlflow.metric_history(run.run_id, key)])


def test_an_untested_schema_revision_is_left_to_mlflow_and_said_in_debug_output(
    store, monkeypatch, caplog
):
    expected = summary(store["mlflow"].list_runs("alpha", order_by="metrics.loss"))
    monkeypatch.setattr(_sqlite_reader, "TESTED_SCHEMA_REVISIONS", frozenset({"0000"}))
    manager = ModelManager(store["uri"])
    with caplog.at_level(logging.DEBUG, logger="agentnn"):
        answer = manager.list_runs("alpha", order_by="metrics.loss")
    assert summary(answer) == expected
    assert "direct SQLite reader declined" in caplog.text
    assert "schema revision" in caplog.text and "not one the direct reader was tested" in \
        caplog.text


def test_mlflow_workspaces_are_left_to_mlflow(store, monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_WORKSPACE", "team")
    reader = _sqlite_reader.SqliteReader(_sqlite_reader.sqlite_path(store["uri"]))
    with pytest.raises(_sqlite_reader.Unsupported, match="MLFLOW_WORKSPACE is set"):
        reader.list_experiments(include_deleted=False)


def test_the_workspace_is_the_one_mlflow_wrote_on_its_default_experiment(store, tmp_path):
    import sqlite3

    copy = tmp_path / "copy.db"
    shutil.copyfile(_sqlite_reader.sqlite_path(store["uri"]), copy)
    with sqlite3.connect(copy) as db:
        db.execute("UPDATE experiments SET workspace = 'other' WHERE name = 'beta'")
    reader = _sqlite_reader.SqliteReader(copy)
    with pytest.raises(_sqlite_reader.Unsupported, match="workspaces other than 'default'"):
        reader.list_experiments(include_deleted=False)


def test_registry_versions_and_short_run_ids_agree(store):
    import mlflow

    from agentnn.errors import AgentNNError

    client = mlflow.MlflowClient(store["uri"], registry_uri=store["uri"])
    runs = store["mlflow"].list_runs(limit=None)
    client.create_registered_model("agreeing")
    for index, run in enumerate(runs[:3]):
        client.create_model_version("agreeing", f"file:///models/{index}", run_id=run.run_id,
                                    tags={"agentnn.model_id": f"m-{index}"} if index else None)
    client.delete_model_version("agreeing", "2")
    client.set_registered_model_alias("agreeing", "champion", "3")
    client.set_registered_model_alias("agreeing", "old", "1")
    answers = [[v.to_dict() for v in store[reader].list_versions("agreeing")]
               for reader in ("direct", "mlflow")]
    assert answers[0] == answers[1]
    assert [v["version"] for v in answers[0]] == [3, 1]  # newest first, the deleted one gone

    def resolved(reader: str, prefix: str) -> str:
        try:
            return store[reader].resolve_run_id(prefix)
        except AgentNNError as error:
            return f"{type(error).__name__}: {error}"

    for run in runs:
        for length in (1, 2, 8):
            prefix = run.run_id[:length]
            assert resolved("direct", prefix) == resolved("mlflow", prefix)
