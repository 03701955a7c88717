"""A fallen-back run reaches its server by itself, also when its process lingers after the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import pytest
from offline_helpers import wait_for
from test_auto_push import local_client

SCRIPT = textwrap.dedent("""
    import time
    from agentnn.mlflow_integration import ExperimentTracker

    with ExperimentTracker("routing").start_run() as run:
        for step in range(20):
            run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
    print(run.run_id, flush=True)
    time.sleep(6)  # other work after the run: longer than the writer's send interval
""")


@pytest.mark.server
def test_a_run_whose_process_works_on_after_it_ended_is_pushed_once_the_server_returns(
    dead_server: str, workdir: Path, start_server, monkeypatch
):
    journal_dir = workdir / "journal"  # the folder's own writer, not the session's
    monkeypatch.setenv("AGENTNN_JOURNAL_DIR", str(journal_dir))
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=workdir, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[0]
    local = local_client(workdir)
    assert local.get_run(run_id).data.tags["agentnn.push"] == "pending"
    # Its last word says who goes on, doing what, and how to stop it.
    last = done.stderr.strip().splitlines()
    said = next(line for line in last if "goes on after this one" in line)
    pid = int(said.split("(pid ", 1)[1].split(")", 1)[0])
    assert f"run {run_id} to push to {dead_server}" in said and f"`kill {pid}`" in said

    start_server(int(dead_server.rsplit(":", 1)[1]))  # after the process has exited

    wait_for(lambda: local.get_run(run_id).data.tags.get("agentnn.push") == "done",
             what="a writer left behind pushed the run")
    server = mlflow.MlflowClient(dead_server)
    (copy,) = server.search_runs([server.get_experiment_by_name("routing").experiment_id])
    assert len(server.get_metric_history(copy.info.run_id, "loss")) == 20
    assert not (journal_dir / f"{run_id}.push").exists()


def test_a_writer_left_behind_gives_up_in_bounded_time_and_the_run_says_why(
    dead_server: str, workdir: Path, cli, monkeypatch
):
    from agentnn.mlflow_integration.writer.loop import writer_running

    monkeypatch.setenv("AGENTNN_WRITER_GIVE_UP", "3")
    journal_dir = workdir / "journal"  # the folder's own writer, not the session's
    monkeypatch.setenv("AGENTNN_JOURNAL_DIR", str(journal_dir))
    done = subprocess.run([sys.executable, "-c", SCRIPT.replace("time.sleep(6)", "pass")],
                          cwd=workdir, env=os.environ.copy(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[0]

    local = local_client(workdir)
    wait_for(lambda: "stopped trying" in local.get_run(run_id).data.tags.get(
        "agentnn.push_note", ""), timeout=60, what="the writer left behind gave up")
    wait_for(lambda: not writer_running(journal_dir), timeout=10, what="the writer exited")

    listed = cli("model", "runs", "--pending", "--output", "json")
    assert listed.exit_code == 0, listed.output
    (run,) = json.loads(listed.stdout)
    note = run["tags"]["agentnn.push_note"]
    assert run["run_id"] == run_id
    assert "stopped trying after 3 s" in note and "does not answer" in note
    table = cli("model", "runs", "--pending")
    assert run_id[:8] in table.stdout and "stopped trying" in table.stdout
    assert (journal_dir / f"{run_id}.push").exists()  # still there for `push --pending`
