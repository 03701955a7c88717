"""The native bulk path is fenced: untested schema revisions and HTTP stores get log_batch."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentnn.mlflow_integration.writer import sql_bulk

UNKNOWN_REVISION = "0123456789ab"


class Lines(logging.Handler):
    """Keeps the messages of the records it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def writer_log() -> Iterator[list[str]]:
    """The lines said on the writer's logger (its log file when a writer runs)."""
    handler = Lines()
    logger = logging.getLogger("agentnn.mlflow_integration.writer")
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)


def test_a_store_on_an_unknown_schema_revision_gets_log_batch_and_the_log_says_why(
    template_store: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy.db"
    shutil.copyfile(template_store, copy)
    with sqlite3.connect(copy) as connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (UNKNOWN_REVISION,))
    messages: list[str] = []
    choice = sql_bulk.choose_path(f"sqlite:///{copy}", report=messages.append)
    assert not choice.native
    assert len(messages) == 1
    assert "log_batch path" in messages[0] and UNKNOWN_REVISION in messages[0]


def test_batches_to_an_untested_revision_are_stored_by_log_batch_said_once(
    store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    monkeypatch.setattr(sql_bulk, "TESTED_REVISIONS", frozenset({UNKNOWN_REVISION}))
    client = MlflowClient(store_uri)
    run_id = client.create_run("0").info.run_id
    messages: list[str] = []
    for step in range(3):
        path = sql_bulk.log_batch(client, store_uri, run_id, [Metric("loss", 1.0, 1, step)],
                                  report=messages.append)
        assert path == sql_bulk.LOG_BATCH
    assert len(messages) == 1  # once per store, not once per batch
    assert "log_batch path" in messages[0] and "is not one the native path was tested on" in (
        messages[0])
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == [0, 1, 2]


def test_a_tested_store_gets_the_native_path_and_says_so_once(
    store_uri: str, writer_log: list[str]
) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(store_uri)
    run_id = client.create_run("0").info.run_id
    for step in range(3):
        path = sql_bulk.log_batch(client, store_uri, run_id, [Metric("loss", 0.5, 1, step)])
        assert path == sql_bulk.NATIVE
    assert len(writer_log) == 1
    assert "native path" in writer_log[0] and sorted(sql_bulk.TESTED_REVISIONS)[0] in writer_log[0]
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == [0, 1, 2]


def test_an_http_store_gets_log_batch_without_a_connection() -> None:
    messages: list[str] = []
    choice = sql_bulk.choose_path("http://user:secret@127.0.0.1:9/", report=messages.append)
    assert not choice.native
    assert messages == []  # a server's path is said by the writer's app_ingest, once


def test_a_run_name_tag_goes_through_log_batch_which_renames_the_run(store_uri: str) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import RunTag

    client = MlflowClient(store_uri)
    run_id = client.create_run("0", run_name="before").info.run_id
    messages: list[str] = []
    path = sql_bulk.log_batch(client, store_uri, run_id, tags=[RunTag("mlflow.runName", "after")],
                              report=messages.append)
    assert path == sql_bulk.LOG_BATCH
    assert client.get_run(run_id).info.run_name == "after"
    assert any("mlflow.runName" in message for message in messages)


def test_a_tracked_run_reaches_an_embedded_store_through_the_native_path(
    tracker, store_uri: str, session_journal_dir: Path  # the tracker fixture
) -> None:
    from mlflow import MlflowClient

    from agentnn.mlflow_integration.writer.loop import LOG_NAME

    with tracker.start_run() as run:
        run.log_params({"lr": 0.01})
        for step in range(50):
            run.log_metrics({"loss": 1.0 / (step + 1), "nan": float("nan")}, step=step)
    client = MlflowClient(store_uri)
    assert len(client.get_metric_history(run.run_id, "loss")) == 50
    assert client.get_run(run.run_id).data.params == {"lr": "0.01"}
    log = (session_journal_dir / LOG_NAME).read_text()
    assert f"{store_uri}: native path" in log
