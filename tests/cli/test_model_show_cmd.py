"""`agentnn model show`: everything about one run."""

from __future__ import annotations

import json


def test_json_has_the_run_its_family_and_artifacts(cli, populated):
    result = cli("model", "show", populated["parent"], "--tracking-uri", populated["uri"],
                 "--output", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["run_id"] == populated["parent"]
    assert data["experiment_name"] == "routing"
    assert data["params"] == {"search": "grid"}
    assert data["artifacts"] == ["notes/readme.txt"]
    assert sorted(data["child_run_ids"]) == sorted([populated["child_0"], populated["child_1"]])
    assert data["logged_model_ids"] == []


def test_the_table_view_shows_unicode_params_and_the_logged_model(cli, populated):
    result = cli("model", "show", populated["with_model"], "--tracking-uri", populated["uri"])
    assert result.exit_code == 0
    assert "ünïcödé run ✓" in result.stdout and "größe" in result.stdout
    assert "m-" in result.stdout  # the logged model id


def test_an_unknown_run_is_one_line_and_exit_1(cli, populated):
    result = cli("model", "show", "deadbeef", "--tracking-uri", populated["uri"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: run 'deadbeef' not found"
