"""A tracking server that does not answer at run start: the run goes on in ./mlruns, tagged."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from agentnn.errors import StoreUnreachableError, TrackingWarning
from agentnn.mlflow_integration import ExperimentTracker


def fallback_warnings(caught: pytest.WarningsRecorder) -> list[str]:
    """The warnings that say a run went to the local store (others may say other things)."""
    messages = [str(w.message) for w in caught if issubclass(w.category, TrackingWarning)]
    return [message for message in messages if "the run is tracked in" in message]


def test_a_dead_server_keeps_the_run_in_mlruns_with_one_warning(
    dead_server: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
):
    port = dead_server.rsplit(":", 1)[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://alice:s3cret@127.0.0.1:{port}")

    with pytest.warns(TrackingWarning) as caught:
        tracker = ExperimentTracker("routing")
        with tracker.start_run(params={"lr": 0.1}) as run:
            for step in range(20):
                run.log_metric("loss", 1 / (step + 1), step=step)

    warnings = fallback_warnings(caught)
    assert len(warnings) == 1
    local = f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}"
    assert f"http://alice:***@127.0.0.1:{port}" in warnings[0] and local in warnings[0]
    kept = mlflow.MlflowClient(local).get_run(run.run_id)
    assert kept.info.status == "FINISHED"
    assert len(mlflow.MlflowClient(local).get_metric_history(run.run_id, "loss")) == 20
    assert kept.data.tags["agentnn.push"] == "pending"
    assert kept.data.tags["agentnn.intended_tracking_uri"] == f"http://alice:***@127.0.0.1:{port}"
    assert "s3cret" not in json.dumps(kept.data.tags)


def test_offline_fail_keeps_the_one_line_error(
    dead_server: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AGENTNN_OFFLINE", "fail")
    with pytest.raises(StoreUnreachableError, match="127.0.0.1"):
        ExperimentTracker("routing")
    assert not (workdir / "mlruns" / "mlflow.db").exists()


def test_runs_pending_lists_what_has_not_reached_its_server(dead_server: str, workdir: Path, cli):
    tracker = ExperimentTracker("routing")
    with tracker.start_run() as run:
        run.log_metric("loss", 0.5)

    listed = cli("model", "runs", "--pending", "--output", "json")

    assert listed.exit_code == 0, listed.output
    assert [r["run_id"] for r in json.loads(listed.stdout)] == [run.run_id]


@pytest.mark.server
def test_a_tracker_kept_for_long_falls_back_when_its_server_goes_away(
    workdir: Path, server_control, start_server
):
    _, stop, free_port = server_control
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_server(port)
    tracker = ExperimentTracker("loads", tracking_uri=uri)
    with tracker.start_run() as online:
        online.log_metric("latency_ms", 3.0)
    stop(server)

    with pytest.warns(TrackingWarning) as caught, tracker.start_run() as offline_run:
        offline_run.log_metric("latency_ms", 4.0)

    local = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}")
    kept = local.get_run(offline_run.run_id)
    assert kept.data.tags["agentnn.push"] == "pending"
    assert kept.data.tags["agentnn.intended_tracking_uri"] == uri
    assert local.get_metric_history(offline_run.run_id, "latency_ms")[0].value == 4.0
    assert len(fallback_warnings(caught)) == 1


def test_the_command_shows_the_fallback_as_one_warning_line(dead_server: str, workdir: Path, cli):
    result = cli("quickstart", "--epochs", "1")  # its run starts in the fallback store

    assert result.exit_code == 0, result.output  # registered and promoted beside its run
    warnings = [line for line in result.stderr.splitlines() if line.startswith("agentnn: warning:")]
    assert len(warnings) == 1, result.stderr
    assert "127.0.0.1" in warnings[0] and "the run is tracked in" in warnings[0]
    local = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}")
    assert str(local.get_model_version_by_alias("agent-router", "champion").version) == "1"
