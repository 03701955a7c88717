"""A chunk's batches, and consecutive chunks, go to the store in one call; a refusal sets aside
only the refused batch, and the call loses or repeats nothing."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow

from agentnn.mlflow_integration.journal.buffered import (
    BufferedJournal,
    new_header,
    new_journal_path,
)
from agentnn.mlflow_integration.journal.format import (
    MAX_RECORDS_PER_CHUNK,
    REJECTED_SUFFIX,
    list_journals,
    rejected_path,
)
from agentnn.mlflow_integration.journal.records import EndRecord, MetricRecord, ParamRecord
from agentnn.mlflow_integration.writer.forwarder import RECORDS_PER_CALL
from agentnn.mlflow_integration.writer.loop import forward_all


def test_a_changed_param_sets_aside_its_batch_and_the_chunks_other_batch_is_stored(
    store_uri: str, tmp_path: Path
):
    client = mlflow.MlflowClient(tracking_uri=store_uri)
    run_id = client.create_run("0").info.run_id
    client.log_param(run_id, "lr", "0.1")
    journal_dir = tmp_path / "journal"
    path = new_journal_path(journal_dir, run_id)
    journal = BufferedJournal(path, new_header(run_id, store_uri), flush_interval=3600)
    for step in range(1500):  # 1,000 points a log_batch: two batches in the one chunk
        journal.add(MetricRecord("loss", step / 1500, 1_000 + step, step))
    journal.add(ParamRecord("lr", "0.2"))  # goes in the second batch; the store has 0.1
    journal.add(EndRecord("FINISHED", 9_000))
    journal.close()

    result = forward_all(journal_dir, once=True)

    assert result is not None
    steps = sorted(point.step for point in client.get_metric_history(run_id, "loss"))
    assert steps == list(range(1000))  # the first batch; the refused one kept nothing
    assert client.get_run(run_id).data.params == {"lr": "0.1"}
    assert client.get_run(run_id).info.status == "FINISHED"
    [line] = rejected_path(path).read_text().splitlines()
    refused = json.loads(line)
    assert "lr" in refused["error"]
    assert len(refused["records"]) == 501  # 500 points and the param; the end record was applied
    assert list_journals(journal_dir) == []  # everything else was sent


def _journal(store_uri: str, tmp_path: Path, run_id: str, points: int) -> BufferedJournal:
    path = new_journal_path(tmp_path / "journal", run_id)
    journal = BufferedJournal(path, new_header(run_id, store_uri), flush_interval=3600)
    for step in range(points):
        journal.add(MetricRecord("loss", 1 / (1 + step), 1_000 + step, step))
    return journal


def test_a_journal_of_many_chunks_arrives_whole_with_its_end(store_uri: str, tmp_path: Path):
    client = mlflow.MlflowClient(tracking_uri=store_uri)
    run_id = client.create_run("0").info.run_id
    points = RECORDS_PER_CALL + 3 * MAX_RECORDS_PER_CHUNK + 7  # more than one call of chunks
    journal = _journal(store_uri, tmp_path, run_id, points)
    journal.add(EndRecord("FINISHED", 99_000))
    journal.close()

    forward_all(tmp_path / "journal", once=True)

    history = client.get_metric_history(run_id, "loss")
    assert sorted(point.step for point in history) == list(range(points))
    assert client.get_run(run_id).info.status == "FINISHED"
    assert client.get_run(run_id).info.end_time == 99_000
    assert list_journals(tmp_path / "journal") == []


def test_a_refused_batch_inside_a_group_is_set_aside_alone(store_uri: str, tmp_path: Path):
    client = mlflow.MlflowClient(tracking_uri=store_uri)
    run_id = client.create_run("0").info.run_id
    client.log_param(run_id, "lr", "0.1")
    journal = _journal(store_uri, tmp_path, run_id, MAX_RECORDS_PER_CHUNK)  # chunk 1: points
    journal.flush()
    journal.add(ParamRecord("lr", "0.2"))  # chunk 2: a param the store refuses
    journal.flush()
    for step in range(MAX_RECORDS_PER_CHUNK, MAX_RECORDS_PER_CHUNK + 10):  # chunk 3: points
        journal.add(MetricRecord("loss", 0.5, 1_000 + step, step))
    journal.add(EndRecord("FINISHED", 99_000))
    journal.close()

    forward_all(tmp_path / "journal", once=True)

    steps = sorted(point.step for point in client.get_metric_history(run_id, "loss"))
    assert steps == list(range(MAX_RECORDS_PER_CHUNK + 10))
    assert client.get_run(run_id).data.params == {"lr": "0.1"}
    [line] = rejected_lines(tmp_path / "journal")
    assert json.loads(line)["records"] == [["p", "lr", "0.2"]]
    assert client.get_run(run_id).info.status == "FINISHED"


def rejected_lines(journal_dir: Path) -> list[str]:
    return [line for path in journal_dir.glob(f"*{REJECTED_SUFFIX}")
            for line in path.read_text().splitlines()]
