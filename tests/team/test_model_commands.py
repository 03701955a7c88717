"""Every `agentnn model` command against the auth server, the password inside the URI."""

from __future__ import annotations

import json

import team_servers as ts


def test_every_model_command_works_with_the_password_in_the_uri(team, auth_server, trained):
    uri = ("--tracking-uri", auth_server.as_user(ts.ALICE, ts.ALICE_PASSWORD))
    first, second = trained["first"], trained["second"]

    def ok(*args: str) -> str:
        result = team.run("model", *args, *uri)
        assert result.returncode == 0, f"agentnn model {args[0]}: {result.stderr}"
        return result.stdout

    experiments = json.loads(ok("experiments", "--output", "json"))
    assert "advanced_training" in [e["name"] for e in experiments]
    runs = json.loads(ok("runs", "advanced_training", "--limit", "0", "--output", "json"))
    assert {first, second} <= {run["run_id"] for run in runs}
    assert json.loads(ok("show", first, "--output", "json"))["run_id"] == first
    (best,) = json.loads(ok("best", "advanced_training", "--metric", "val_loss",
                            "--output", "json"))
    assert best["run_id"] in {run["run_id"] for run in runs}
    compared = json.loads(ok("compare", first, second, "--output", "json"))
    assert compared["run_ids"] == [first, second]
    ok("plot", first, second, "--metric", "val_loss", "--out", "curves.png")
    assert (team.workdir / "curves.png").read_bytes()[:4] == b"\x89PNG"

    (registered,) = json.loads(ok("register", second, "cli-router", "--alias", "champion",
                                  "--output", "json"))
    version = str(registered["version"])
    ok("alias", "cli-router", "challenger", version)
    ok("alias", "cli-router", "challenger", "--delete")
    versions = json.loads(ok("versions", "cli-router", "--output", "json"))
    assert [(str(v["version"]), v["aliases"]) for v in versions] == [(version, ["champion"])]
    signature = ok("load", "models:/cli-router@champion")
    assert json.loads(signature)
    client = auth_server.admin_client()
    assert client.get_model_version_by_alias("cli-router", "champion").run_id == second


def test_sync_with_nothing_left_to_send(team, auth_server):
    env = team.credentials("env", auth_server.url, ts.ALICE, ts.ALICE_PASSWORD)
    result = team.run("model", "sync", env=env)
    assert result.returncode == 0, result.stderr
