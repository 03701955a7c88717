"""Nothing that reached the journal is lost: not by a crash, not by a store outage."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

from agentnn.cli.main import app


def test_points_flushed_before_a_hard_crash_reach_the_store_after_sync(store_uri, workdir: Path):
    script = workdir / "crash.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, time
        from agentnn.mlflow_integration import ExperimentTracker
        run = ExperimentTracker("crash", tracking_uri={store_uri!r}).start_run()
        print(run.run_id, flush=True)
        for step in range(3000):
            run.log_metric("loss", step * 0.001, step=step)
        time.sleep(2.5)  # longer than the flush interval: the points are in the journal
        os.kill(os.getpid(), signal.SIGKILL)
    """))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=300, env=os.environ.copy())
    assert result.returncode == -9
    run_id = result.stdout.strip()
    outcome = CliRunner().invoke(app, ["model", "sync", "--timeout", "120"])
    assert outcome.exit_code == 0, outcome.output
    history = mlflow.MlflowClient(store_uri).get_metric_history(run_id, "loss")
    assert sorted(point.step for point in history) == list(range(3000))


@pytest.mark.server
@pytest.mark.slow
def test_a_server_outage_loses_nothing_and_sync_sends_the_rest(workdir: Path, server_control):
    from agentnn.errors import TrackingWarning
    from agentnn.mlflow_integration import ExperimentTracker

    start_server, stop_server, free_port = server_control
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(workdir, port)
    tracker = ExperimentTracker("outage", tracking_uri=url, drain_timeout=3)
    with pytest.warns(TrackingWarning, match="agentnn model sync"):
        with tracker.start_run(params={"lr": 0.1}) as run:
            run.log_metrics({"loss": 1.0}, step=0)
            stop_server(server)  # the store goes away mid-run
            for step in range(1, 500):
                run.log_metrics({"loss": 1.0 / step}, step=step)
    start_server(workdir, port)  # the store comes back, same data
    outcome = CliRunner().invoke(app, ["model", "sync", "--timeout", "150"],
                                 env={"MLFLOW_TRACKING_URI": url})
    assert outcome.exit_code == 0, outcome.output
    client = mlflow.MlflowClient(url)
    history = client.get_metric_history(run.run_id, "loss")
    assert sorted(point.step for point in history) == list(range(500))
    finished = client.get_run(run.run_id)
    assert finished.info.status == "FINISHED" and finished.data.params == {"lr": "0.1"}
