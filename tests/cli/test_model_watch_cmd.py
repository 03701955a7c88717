"""`agentnn model watch`: a live view of a run or an experiment's running runs.

Runs are made with MLflow's own client; points "not yet in the store" are written to the run's
journal with the journal module's own writer, in a journal folder no writer process serves.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

BASE_TIME = 1_700_000_000_000


@pytest.fixture
def live_run(store_uri: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A RUNNING run with 10 steps of loss and acc in the store, and 5 more loss points in its
    local journal that the store does not have yet."""
    import mlflow
    from mlflow.entities import Metric

    from agentnn.mlflow_integration.journal.buffered import (
        BufferedJournal,
        new_header,
        new_journal_path,
    )
    from agentnn.mlflow_integration.journal.records import MetricRecord

    journal_dir = workdir / "journal-watch"
    monkeypatch.setenv("AGENTNN_JOURNAL_DIR", str(journal_dir))
    client = mlflow.MlflowClient(store_uri)
    experiment_id = client.create_experiment("live")
    run_id = client.create_run(experiment_id, run_name="training",
                               start_time=BASE_TIME).info.run_id
    client.log_batch(run_id, metrics=[
        Metric(key, value, BASE_TIME + step * 1000, step)
        for step in range(10)
        for key, value in (("loss", 1.0 / (step + 1)), ("acc", step / 10))
    ])
    journal = BufferedJournal(
        new_journal_path(journal_dir, run_id),
        new_header(run_id, store_uri), flush_interval=60.0,
    )
    for step in range(10, 15):
        journal.add(MetricRecord("loss", 0.05 - step / 1000, BASE_TIME + step * 1000,
                                            step))
    journal.close()
    finished = client.create_run(experiment_id, run_name="done").info.run_id
    client.set_terminated(finished)
    return {"uri": store_uri, "run_id": run_id, "finished": finished, "client": client,
            "journal_dir": journal_dir}


def test_once_as_json_merges_store_and_journal(cli, live_run):
    result = cli("model", "watch", live_run["run_id"], "--once", "--output", "json",
                 "--tracking-uri", live_run["uri"])
    assert result.exit_code == 0, result.output
    snapshot = json.loads(result.stdout)
    assert snapshot["running"] is True
    (run,) = snapshot["runs"]
    assert run["run_id"] == live_run["run_id"] and run["status"] == "RUNNING"
    assert run["journal"].startswith(str(live_run["journal_dir"]))
    metrics = {metric["key"]: metric for metric in run["metrics"]}
    assert metrics["loss"]["latest_step"] == 14 and metrics["loss"]["pending"] == 5
    assert metrics["loss"]["latest"] == pytest.approx(0.05 - 14 / 1000)
    assert metrics["loss"]["goal"] == "min" and metrics["loss"]["best"] == metrics["loss"][
        "latest"]
    assert metrics["acc"]["goal"] == "max" and metrics["acc"]["best"] == pytest.approx(0.9)
    assert metrics["acc"]["pending"] == 0
    assert run["steps_per_s"] == pytest.approx(1.0)  # one step per second of logged time
    assert run["elapsed_s"] > 0


def test_once_as_a_table_shows_each_metric_with_a_sparkline(cli, live_run):
    result = cli("model", "watch", live_run["run_id"], "--once",
                 "--tracking-uri", live_run["uri"], columns=160)
    assert result.exit_code == 0, result.output
    assert "training" in result.stdout and "RUNNING" in result.stdout
    lines = {line.split()[1]: line for line in result.stdout.splitlines()
             if line.startswith("│ ")}
    assert {"loss", "acc"} <= set(lines)
    assert any(char in lines["loss"] for char in "▁▂▃▄▅▆▇█")


def test_an_experiment_shows_its_running_runs_only(cli, live_run):
    result = cli("model", "watch", "live", "--once", "--output", "json",
                 "--tracking-uri", live_run["uri"])
    assert result.exit_code == 0, result.output
    snapshot = json.loads(result.stdout)
    assert snapshot["experiment"] == "live"
    assert [run["run_id"] for run in snapshot["runs"]] == [live_run["run_id"]]


def test_the_view_exits_when_the_run_ends(live_run, workdir):
    env = {**os.environ, "AGENTNN_JOURNAL_DIR": str(live_run["journal_dir"])}
    process = subprocess.Popen(
        [sys.executable, "-m", "agentnn", "model", "watch", live_run["run_id"], "--interval",
         "0.5", "--output", "json", "--tracking-uri", live_run["uri"]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=workdir,
    )
    try:
        first = json.loads(read_line(process))
        assert first["running"] is True
        live_run["client"].set_terminated(live_run["run_id"], status="KILLED")
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        last = json.loads(out.strip().splitlines()[-1])
        assert last["running"] is False and last["runs"][0]["status"] == "KILLED"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=20)


def read_line(process: subprocess.Popen, timeout: float = 120.0) -> str:
    """The next line the process prints; fails instead of hanging when none comes."""
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, f"no output within {timeout} s"
    return process.stdout.readline()


def test_an_unknown_target_is_one_line(cli, store_uri):
    result = cli("model", "watch", "nope", "--once", "--tracking-uri", store_uri)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: run or experiment 'nope' not found; list them with: agentnn model experiments")


def test_the_live_table_ends_with_the_run(live_run, workdir):
    env = {**os.environ, "AGENTNN_JOURNAL_DIR": str(live_run["journal_dir"]), "COLUMNS": "160"}
    process = subprocess.Popen(
        [sys.executable, "-m", "agentnn", "model", "watch", "live", "--interval", "0.5",
         "--tracking-uri", live_run["uri"]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=workdir,
    )
    try:
        assert "experiment live: 1 running" in read_line(process)  # the first frame
        live_run["client"].set_terminated(live_run["run_id"])
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "FINISHED" in out and "experiment live: 0 running" in out  # the last frame
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=20)
