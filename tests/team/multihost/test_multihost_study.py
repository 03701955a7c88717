"""Two trainer hosts search one Optuna study on the server's PostgreSQL at once."""

from __future__ import annotations

import uuid
from pathlib import Path

from multihost_helpers import AGENTNN, finish, start_on
from team_helpers import assert_no_secret

TRIALS_EACH = 2


def test_two_hosts_share_one_study_with_one_parent_run_and_every_trial_once(site, tmp_path: Path):
    study = f"hosts-{uuid.uuid4().hex[:8]}"
    database = f"optuna_{study.replace('-', '_')}"
    storage = site.postgres.create_database(database)  # on the server host's address
    command = [AGENTNN, "train", "architecture", "--dataset", "synthetic", "--epochs", "1",
               "--trials", str(TRIALS_EACH), "--study", study, "--storage", storage]

    searches = [start_on(host, command, tmp_path / host.namespace, site.tracking_env())
                for host in site.trainers]
    outputs = [finish(search) for search in searches]

    for search, (out, err) in zip(searches, outputs):
        assert search.returncode == 0, err
        assert_no_secret(out + err, "search's output")
    trials = site.sql("select number, state from trials order by number", database=database)
    assert trials == [[str(n), "COMPLETE"] for n in range(2 * TRIALS_EACH)]
    runs = site.sql(
        "select r.run_uuid, r.status, "
        "(select value from tags t where t.run_uuid = r.run_uuid and t.key = 'agentnn.trial'), "
        "(select value from tags t where t.run_uuid = r.run_uuid "
        " and t.key = 'mlflow.parentRunId') "
        "from runs r join tags s on s.run_uuid = r.run_uuid "
        f"where s.key = 'agentnn.study' and s.value = '{study}'")
    parents = [run_id for run_id, _, trial, parent in runs if not trial and not parent]
    assert len(parents) == 1
    children = sorted((int(trial), parent, status) for _, status, trial, parent in runs if trial)
    assert children == [(n, parents[0], "FINISHED") for n in range(2 * TRIALS_EACH)]
