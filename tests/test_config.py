"""Where tracked data goes: argument, MLFLOW_TRACKING_URI, .env, then ./mlruns (SQLite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentnn import config
from agentnn.cli.main import app
from agentnn.errors import LegacyFileStoreError, TrackingURIError


def agentnn_config(cwd: Path, env: dict[str, str] | None = None) -> dict:
    """`agentnn config --output json` in a real subprocess, with a clean environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AGENTNN_"))}
    result = subprocess.run(
        [sys.executable, "-m", "agentnn", "config", "--output", "json"],
        cwd=cwd, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_default_is_sqlite_inside_mlruns_of_the_working_directory(tmp_path: Path):
    settings = agentnn_config(tmp_path)
    assert settings["tracking_uri"] == {
        "value": f"sqlite:///{tmp_path.resolve() / 'mlruns' / 'mlflow.db'}", "source": "default"}
    assert settings["artifact_location"]["value"] == str(tmp_path.resolve() / "mlruns/artifacts")


def test_dotenv_beats_the_default_and_env_beats_dotenv(tmp_path: Path):
    (tmp_path / ".env").write_text("MLFLOW_TRACKING_URI=sqlite:///from-dotenv.db\n"
                                   "AGENTNN_DRAIN_TIMEOUT=5\n")
    settings = agentnn_config(tmp_path)
    assert settings["tracking_uri"] == {"value": "sqlite:///from-dotenv.db", "source": ".env"}
    assert settings["drain_timeout"] == {"value": "5", "source": ".env"}
    assert "artifact_location" not in settings
    settings = agentnn_config(tmp_path, {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5999"})
    assert settings["tracking_uri"] == {"value": "http://127.0.0.1:5999", "source": "env"}


def test_an_explicit_argument_beats_everything(workdir: Path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")
    settings = config.resolve("sqlite:///arg.db")
    assert (settings.tracking_uri.value, settings.tracking_uri.source) == ("sqlite:///arg.db",
                                                                           "argument")


def test_a_password_in_the_uri_is_masked_when_shown(tmp_path: Path):
    settings = agentnn_config(tmp_path, {"MLFLOW_TRACKING_URI": "postgresql://bob:s3cret@db/ml"})
    assert settings["tracking_uri"]["value"] == "postgresql://bob:***@db/ml"


def test_table_output_names_each_source(workdir: Path):
    (workdir / ".env").write_text("AGENTNN_DRAIN_TIMEOUT=7\n")
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 0
    assert "tracking_uri" in result.output and ".env" in result.output
    assert "default" in result.output


def test_a_legacy_file_store_is_reported_with_the_migration_command(workdir: Path):
    subprocess.run(
        [sys.executable, "-c", "import mlflow; mlflow.set_tracking_uri('file:./mlruns');"
         "mlflow.set_experiment('old');"
         "r = mlflow.start_run(); mlflow.log_param('a', 1); mlflow.end_run()"],
        env={**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"}, check=True, timeout=120,
        capture_output=True,
    )
    from agentnn.mlflow_integration import ExperimentTracker

    with pytest.raises(LegacyFileStoreError, match="mlflow migrate-filestore --source"):
        ExperimentTracker("new")
    result = CliRunner().invoke(app, ["quickstart", "--epochs", "1"])
    assert result.exit_code == 1
    assert "legacy MLflow file store" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("uri, fragment", [
    ("foo://nowhere", "unknown scheme"),
    ("./some/folder", "file store"),
    ("http://", "no host"),
])
def test_a_malformed_uri_names_the_uri_and_where_it_came_from(workdir, monkeypatch, uri,
                                                             fragment):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    from agentnn.mlflow_integration import ExperimentTracker

    with pytest.raises(TrackingURIError, match=fragment) as caught:
        ExperimentTracker("x")
    assert caught.value.source == "env" and uri in str(caught.value)


def test_an_unreachable_server_fails_with_one_line_naming_the_uri(
    workdir: Path, server_control, monkeypatch
):
    _, _, free_port = server_control
    monkeypatch.setenv("AGENTNN_OFFLINE", "fail")  # the default, fallback, trains locally instead
    uri = f"http://127.0.0.1:{free_port()}"
    (workdir / ".env").write_text(f"MLFLOW_TRACKING_URI={uri}\n")
    result = CliRunner().invoke(app, ["quickstart", "--epochs", "1"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and uri in lines[0] and "(from .env)" in lines[0]
    assert "does not answer" in lines[0]


def test_a_tracker_does_not_leave_its_uri_behind_as_if_the_user_had_set_it(workdir: Path):
    from agentnn.mlflow_integration import ExperimentTracker

    first = ExperimentTracker("one")
    assert first.settings.tracking_uri.source == "default"
    other = workdir / "elsewhere"
    other.mkdir()
    os.chdir(other)
    second = ExperimentTracker("two")
    assert second.settings.tracking_uri.source == "default"
    assert second.tracking_uri == f"sqlite:///{other.resolve() / 'mlruns' / 'mlflow.db'}"
    assert "MLFLOW_TRACKING_URI" not in os.environ
