"""A chunk's batches go to the store in one call; a refusal sets aside only the refused batch."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow

from agentnn.mlflow_integration.journal import (
    BufferedJournal,
    EndRecord,
    MetricRecord,
    ParamRecord,
    list_journals,
    new_header,
    new_journal_path,
    rejected_path,
)
from agentnn.mlflow_integration.writer import forward_all


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
