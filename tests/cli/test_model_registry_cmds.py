"""`agentnn model register`, `alias` and `versions`: promotion by alias, end to end."""

from __future__ import annotations

import json


def test_register_then_move_and_delete_an_alias(cli, populated_copy):
    uri = ["--tracking-uri", populated_copy["uri"]]
    first = cli("model", "register", populated_copy["with_model"], "agent-router", *uri,
                "--output", "json")
    assert first.exit_code == 0, first.output
    (version,) = json.loads(first.stdout)
    assert version["version"] == 1 and version["run_id"] == populated_copy["with_model"]
    second = cli("model", "register", populated_copy["with_model"], "agent-router",
                 "--alias", "champion", *uri, "--output", "json")
    assert json.loads(second.stdout)[0]["aliases"] == ["champion"]

    moved = cli("model", "alias", "agent-router", "champion", "1", *uri)
    assert moved.exit_code == 0 and "agent-router@champion -> version 1" in moved.stdout
    listed = json.loads(cli("model", "versions", "agent-router", *uri, "--output", "json").stdout)
    assert [(v["version"], v["aliases"]) for v in listed] == [(2, []), (1, ["champion"])]
    assert listed[0]["run_metrics"] == {"val_loss": 0.42}

    removed = cli("model", "alias", "agent-router", "champion", "--delete", *uri)
    assert removed.exit_code == 0
    listed = json.loads(cli("model", "versions", "agent-router", *uri, "--output", "json").stdout)
    assert all(v["aliases"] == [] for v in listed)


def test_registering_a_run_without_a_model_is_one_line_and_exit_1(cli, populated_copy):
    result = cli("model", "register", populated_copy["lr_0.01"], "router",
                 "--tracking-uri", populated_copy["uri"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: model in run '{populated_copy['lr_0.01']}' not "
                                    "found; the run logged no model")


def test_alias_needs_a_version_or_delete_but_not_both(cli, populated):
    uri = ["--tracking-uri", populated["uri"]]
    assert cli("model", "alias", "agent-router", "champion", *uri).exit_code == 2
    assert cli("model", "alias", "agent-router", "champion", "1", "--delete", *uri).exit_code == 2


def test_unknown_model_and_alias_are_one_line_errors(cli, populated):
    uri = ["--tracking-uri", populated["uri"]]
    versions = cli("model", "versions", "nobody", *uri)
    assert versions.exit_code == 1
    assert versions.stderr.startswith("error: registered model 'nobody' not found")
    alias = cli("model", "alias", "nobody", "champion", "--delete", *uri)
    assert alias.exit_code == 1 and "registered model 'nobody' not found" in alias.stderr
