"""Consecutive chunks go to the store in one call; what that call may not lose or repeat."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow

from agentnn.mlflow_integration.journal import (
    MAX_RECORDS_PER_CHUNK,
    REJECTED_SUFFIX,
    BufferedJournal,
    EndRecord,
    MetricRecord,
    ParamRecord,
    list_journals,
    new_header,
    new_journal_path,
)
from agentnn.mlflow_integration.writer import RECORDS_PER_CALL, forward_all


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
