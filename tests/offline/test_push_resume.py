"""A push killed half-way and run again gives one complete copy: nothing missing, nothing twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import mlflow
from mlflow.entities import Metric
from offline_helpers import assert_whole_copy, copies_of

from agentnn.sdk.nn_models import ModelManager

POINTS = 20_000  # enough that the push takes seconds, so it can be killed in the middle
KILL_TIMEOUT = 120.0


def metric_rows(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as connection:
        return connection.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]


def test_a_push_killed_half_way_resumes_to_one_complete_copy(
    store_uri: str, second_store: str, workdir: Path
):
    source = mlflow.MlflowClient(store_uri)
    experiment_id = source.create_experiment("routing")
    run = source.create_run(experiment_id, run_name="long", tags={"team": "routing"})
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    for start in range(0, POINTS, 1000):
        source.log_batch(run_id, metrics=[
            Metric("loss", 1 / (step + 1), now + step, step) for step in range(start, start + 1000)
        ])
    source.set_terminated(run_id, "FINISHED")
    target_db = Path(second_store[len("sqlite:///"):])

    push = subprocess.Popen(
        [sys.executable, "-m", "agentnn", "model", "push", run_id, "--to", second_store,
         "--tracking-uri", store_uri],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + KILL_TIMEOUT
        while (sent := metric_rows(target_db)) == 0 and time.monotonic() < deadline:
            assert push.poll() is None, "the push ended before it was killed"
            time.sleep(0.02)
    finally:
        os.killpg(push.pid, signal.SIGKILL)
        push.wait(timeout=15)
    assert 0 < metric_rows(target_db) < POINTS  # really killed half-way

    resumed = ModelManager(store_uri).push_runs([run_id], to=second_store)[0]

    target = mlflow.MlflowClient(second_store)
    assert not resumed.created
    assert 0 < resumed.metrics < POINTS
    assert len(copies_of(target, run_id)) == 1
    assert_whole_copy(source, target, run_id)
    assert metric_rows(target_db) == POINTS
    assert sent > 0
