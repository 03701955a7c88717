"""No password in any output, writer log, tag, param or table of the stores.

Every `agentnn` command the team tests run has its output and the writer's log checked as it
runs (team_helpers.Team.run); this test adds runs whose params and tags carry the URIs, then
reads every tag and param back and dumps every database of the cluster.
"""

from __future__ import annotations

import team_servers as ts
from team_helpers import assert_no_secret


def test_no_password_in_logs_tags_params_or_any_database(
    team, postgres, auth_server, plain_server, monkeypatch
):
    import mlflow

    from agentnn.mlflow_integration import ExperimentTracker

    for key, value in team.base_env().items():
        monkeypatch.setenv(key, value)
    direct = postgres.create_database("mlflow_secrets")
    alice_uri = auth_server.as_user(ts.ALICE, ts.ALICE_PASSWORD)
    for uri in (alice_uri, direct):
        tracker = ExperimentTracker("secrets", tracking_uri=uri)
        with tracker.start_run(params={"tracking_uri": uri, "db": {"url": direct}},
                               tags={"store": uri}) as run:
            run.log_metrics({"loss": 0.5}, step=0)
    listed = team.run("model", "runs", "secrets", "--output", "json", "--tracking-uri", alice_uri)
    assert listed.returncode == 0, listed.stderr
    refused = team.run("model", "runs", "secrets", "--tracking-uri",
                       auth_server.as_user(ts.ALICE, ts.WRONG_PASSWORD), timeout=120)
    assert refused.returncode == 1

    assert_no_secret(team.writer_logs(), f"writer's log in {team.journal_dir}")
    stores = {"auth server": auth_server.as_user(ts.ADMIN_USER, ts.ADMIN_PASSWORD),
              "plain server": plain_server, "direct database": direct}
    for where, uri in stores.items():
        client = mlflow.MlflowClient(uri)
        for experiment in client.search_experiments():
            assert_no_secret(experiment.artifact_location, f"{where}: {experiment.name}")
            for run in client.search_runs([experiment.experiment_id]):
                assert_no_secret(repr(run.data.params) + repr(run.data.tags),
                                 f"{where}: params and tags of run {run.info.run_id}")
    for database in postgres.databases():
        assert_no_secret(postgres.dump(database), f"pg_dump of {database}")
