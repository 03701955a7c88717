"""A fallen-back run reaches its server by itself, also when its process lingers after the run."""

from __future__ import annotations

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
    dead_server: str, workdir: Path, start_server
):
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=workdir, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[0]
    local = local_client(workdir)
    assert local.get_run(run_id).data.tags["agentnn.push"] == "pending"

    start_server(int(dead_server.rsplit(":", 1)[1]))  # after the process has exited

    wait_for(lambda: local.get_run(run_id).data.tags.get("agentnn.push") == "done",
             what="a writer left behind pushed the run")
    server = mlflow.MlflowClient(dead_server)
    (copy,) = server.search_runs([server.get_experiment_by_name("routing").experiment_id])
    assert len(server.get_metric_history(copy.info.run_id, "loss")) == 20
    assert not (workdir / "mlruns" / "journal" / f"{run_id}.push").exists()
