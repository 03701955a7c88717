"""`agentnn model push --pending` and the writer push the same runs: each arrives once, no error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mlflow
import pytest
from offline_helpers import REACH_TIMEOUT, copies_of, wait_for
from test_auto_push import local_client

SCRIPT = textwrap.dedent("""
    from agentnn.mlflow_integration import ExperimentTracker

    tracker = ExperimentTracker("routing")
    for _ in range(6):
        with tracker.start_run() as run:
            for step in range(500):
                run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 500}, step=step)
        print(run.run_id, flush=True)
""")


@pytest.mark.server
def test_push_pending_beside_the_writer_reports_each_run_and_copies_it_once(
    dead_server: str, workdir: Path, start_server, cli, monkeypatch
):
    made = subprocess.run([sys.executable, "-c", SCRIPT], cwd=workdir, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    run_ids = made.stdout.split()
    local = local_client(workdir)
    start_server(int(dead_server.rsplit(":", 1)[1]))
    # A shell without the server's URI: the command finds each run's store in its .push file,
    # which the writer (left behind by the script) removes as it pushes the same runs.
    monkeypatch.delenv("MLFLOW_TRACKING_URI")

    def pushed() -> list[str]:
        return [r for r in run_ids if local.get_run(r).data.tags.get("agentnn.push") == "done"]

    wait_for(lambda: bool(pushed()), what="the writer began pushing")  # the race is on from here

    deadline = time.monotonic() + REACH_TIMEOUT
    tries = 0
    while time.monotonic() < deadline:
        result = cli("model", "push", "--pending", "--output", "json")
        tries += 1
        assert result.exit_code == 0, result.output
        reported = json.loads(result.stdout)  # nothing but JSON on stdout
        assert {row["source_run_id"] for row in reported} <= set(run_ids)
        if len(pushed()) == len(run_ids):
            break
    else:
        raise AssertionError(f"runs still pending after {tries} pushes")

    server = mlflow.MlflowClient(dead_server)
    for run_id in run_ids:
        (copy,) = copies_of(server, run_id)
        assert len(server.get_metric_history(copy.info.run_id, "loss")) == 500
