"""Eight training processes log through the auth server at once: no error, every point arrives."""

from __future__ import annotations

import uuid

import team_servers as ts

PROCESSES = 8
STEPS = 300  # two metrics a step: 600 points a process, 4,800 in all

WORKER = """
import sys
from agentnn.mlflow_integration import ExperimentTracker

experiment, worker, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tracker = ExperimentTracker(experiment)
with tracker.start_run(run_name=f"worker-{worker}", params={"worker": worker}) as run:
    for step in range(steps):
        run.log_metrics({"loss": worker + 1.0 / (step + 1), "acc": step / steps}, step=step)
print(run.run_id)
"""


def test_eight_processes_logging_at_once_lose_nothing(team, auth_server):
    experiment = f"concurrent-{uuid.uuid4().hex[:8]}"
    env = team.credentials("env", auth_server.url, ts.ALICE, ts.ALICE_PASSWORD)

    workers = [team.python(WORKER, experiment, str(worker), str(STEPS), env=env)
               for worker in range(PROCESSES)]
    outcomes = [worker.communicate(timeout=900) for worker in workers]

    for worker, (out, err) in zip(workers, outcomes):
        assert worker.returncode == 0, err
        assert "error" not in err.lower() and "Traceback" not in err, err
        for secret in ts.SECRETS:
            assert secret not in out + err
    client = auth_server.admin_client()
    (experiment_id,) = [e.experiment_id for e in client.search_experiments()
                        if e.name == experiment]
    runs = client.search_runs([experiment_id])
    assert len(runs) == PROCESSES
    for run in runs:
        worker = int(run.data.params["worker"])
        assert run.info.status == "FINISHED"
        loss = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id,
                                                                            "loss"))
        acc = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "acc"))
        assert loss == [(s, worker + 1.0 / (s + 1)) for s in range(STEPS)]
        assert acc == [(s, s / STEPS) for s in range(STEPS)]
    assert {run.info.run_id for run in runs} == {out.strip().splitlines()[-1]
                                                for out, _ in outcomes}
