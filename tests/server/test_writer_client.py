"""A training run logging to a server with the agentnn app: its journal goes through the bulk
ingest, every point arrives, and the writer's log says which path it took, once."""

from __future__ import annotations

import uuid

import team_servers as ts

STEPS = 3000  # ten metrics a step: 30,000 points, two requests of the ingest

WORKER = """
import sys
from agentnn.mlflow_integration import ExperimentTracker

experiment, steps = sys.argv[1], int(sys.argv[2])
tracker = ExperimentTracker(experiment)
with tracker.start_run(run_name="ingest", params={"lr": 0.01}) as run:
    for step in range(steps):
        run.log_metrics({f"m{k}": k + step / steps for k in range(10)}, step=step)
print(run.run_id)
"""


def test_a_run_reaches_the_app_whole_through_the_ingest(team, agentnn_server, postgres):
    experiment = f"writer-ingest-{uuid.uuid4().hex[:8]}"
    env = team.credentials("env", agentnn_server.url, ts.ALICE, ts.ALICE_PASSWORD)

    worker = team.python(WORKER, experiment, str(STEPS), env=env)
    out, err = worker.communicate(timeout=600)

    assert worker.returncode == 0, err
    run_id = out.strip().splitlines()[-1]
    count = postgres.psql(f"select count(*) from metrics where run_uuid = '{run_id}'",
                          database="agentnn_tracking").stdout.strip()
    assert int(count) == 10 * STEPS, team.writer_logs() + err
    client = agentnn_server.admin_client()
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.01"}
    history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "m3"))
    assert history == [(s, 3 + s / STEPS) for s in range(STEPS)]
    log = team.writer_logs()
    assert log.count("agentnn ingest path") == 1, log
    assert "log_batch path" not in log, log
    for secret in ts.SECRETS:
        assert secret not in log + out + err


def test_a_stock_server_gets_the_run_through_log_batch_and_the_log_says_so(team, auth_server):
    experiment = f"writer-stock-{uuid.uuid4().hex[:8]}"
    env = team.credentials("env", auth_server.url, ts.ALICE, ts.ALICE_PASSWORD)

    worker = team.python(WORKER, experiment, "300", env=env)
    out, err = worker.communicate(timeout=600)

    assert worker.returncode == 0, err
    run_id = out.strip().splitlines()[-1]
    history = auth_server.admin_client().get_metric_history(run_id, "m0")
    assert len(history) == 300
    log = team.writer_logs()
    assert log.count("log_batch path") == 1, log
    assert "MLflow's REST API" in log, log
    assert "agentnn ingest path" not in log, log
