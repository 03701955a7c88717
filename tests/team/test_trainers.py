"""Every `agentnn train …` command logs through the basic-auth server, credentials from env."""

from __future__ import annotations

import pytest
import team_servers as ts
from team_helpers import run_id_of

SEARCH_CONFIG = "n_candidates: 2\nmax_reshapes: 0\n"  # two small candidates keep it quick

TRAINERS = {
    "advanced": ("--dataset", "synthetic", "--epochs", "1"),
    "multi-task": ("--data", "logs.jsonl", "--epochs", "1"),
    "architecture": ("--dataset", "synthetic", "--epochs", "1", "--config", "search.yaml"),
    "online": ("--data", "logs.jsonl"),
    "distributed": ("--dataset", "synthetic", "--epochs", "1", "--nproc", "2"),
}


@pytest.mark.parametrize("trainer", TRAINERS)
def test_trainer_logs_and_registers_through_the_auth_server(trainer, team, auth_server):
    from agentnn.data import synthesize_interactions, write_interactions

    write_interactions(synthesize_interactions(200, 4, seed=0), team.workdir / "logs.jsonl")
    (team.workdir / "search.yaml").write_text(SEARCH_CONFIG)
    model_name = f"team-{trainer}"
    env = team.credentials("env", auth_server.url, ts.ALICE, ts.ALICE_PASSWORD)

    result = team.run("train", trainer, *TRAINERS[trainer], "--register-as", model_name, env=env)

    assert result.returncode == 0, result.stderr
    client = auth_server.admin_client()
    run = client.get_run(run_id_of(result))
    assert run.info.status == "FINISHED"
    assert run.data.metrics and run.data.params
    versions = client.search_model_versions(f"name = '{model_name}'")
    assert versions, f"no version of {model_name} registered"
