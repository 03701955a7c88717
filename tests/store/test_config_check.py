"""`agentnn config --check`: what the resolved store says about itself, as a table or JSON."""

from __future__ import annotations

import json

import mlflow
from store_helpers import PASSWORD, error_lines, run_cli


def test_check_reports_a_server_as_json(workdir, mlflow_server):
    uri = mlflow_server.replace("http://", f"http://alice:{PASSWORD}@")
    result = run_cli(["config", "--check", "--output", "json"], workdir, MLFLOW_TRACKING_URI=uri)
    assert result.returncode == 0, result.stderr
    check = json.loads(result.stdout)["check"]
    assert check["reachable"] is True and check["server_version"] == mlflow.__version__
    assert check["backend"] == "SqlStore" and check["auth_enabled"] is False
    assert check["credentials_ok"] is True and check["artifacts_proxied"] is True
    assert PASSWORD not in result.stdout + result.stderr


def test_check_of_a_dead_server_is_a_table_and_one_line(workdir, closed_port):
    uri = f"http://alice:{PASSWORD}@127.0.0.1:{closed_port}"
    result = run_cli(["config", "--check"], workdir, MLFLOW_TRACKING_URI=uri)
    assert result.returncode == 1
    assert "reachable" in result.stdout and "connection refused" in result.stdout
    [line] = error_lines(result)
    assert "does not answer" in line and PASSWORD not in result.stdout + result.stderr


def test_check_of_a_sqlite_store_reports_its_schema(workdir, store_uri):
    result = run_cli(["config", "--check", "-o", "json"], workdir, MLFLOW_TRACKING_URI=store_uri)
    assert result.returncode == 0, result.stderr
    check = json.loads(result.stdout)["check"]
    assert check["reachable"] is True and check["kind"] == "sqlite"


def test_config_shows_the_offline_setting(workdir):
    result = run_cli(["config", "-o", "json"], workdir, AGENTNN_OFFLINE="fail")
    assert json.loads(result.stdout)["offline"] == {"value": "fail", "source": "env"}


def test_a_bad_offline_value_is_one_line(workdir):
    result = run_cli(["config"], workdir, AGENTNN_OFFLINE="sometimes")
    assert result.returncode == 1
    assert "offline must be one of fallback, fail" in error_lines(result)[0]
