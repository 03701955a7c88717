"""Store.check and the commands on a dead store: one line, exit 1, in seconds (not minutes)."""

from __future__ import annotations

import pytest
from store_helpers import PASSWORD, error_lines, run_cli

from agentnn.errors import StoreUnreachableError
from agentnn.mlflow_integration import ExperimentTracker
from agentnn.mlflow_integration.store.client import Store


def test_check_raises_unreachable_for_a_closed_port(workdir, closed_port):
    with pytest.raises(StoreUnreachableError, match="connection refused"):
        Store.resolve(f"http://127.0.0.1:{closed_port}").check()


def test_check_raises_unreachable_for_an_unknown_host(workdir):
    with pytest.raises(StoreUnreachableError, match="does not answer"):
        Store.resolve("http://no-such-host.invalid:5000").check()


def test_a_direct_postgresql_uri_with_nothing_listening_fails_fast(workdir, closed_port):
    store = Store.resolve(f"postgresql://alice:{PASSWORD}@127.0.0.1:{closed_port}/mlflow")
    with pytest.raises(StoreUnreachableError, match="database does not answer") as caught:
        store.client()  # probed first: MLflow itself would retry its engine for ~100 s
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize("command", [
    ["model", "runs"], ["model", "experiments"], ["model", "load", "router@champion"],
])
def test_commands_on_a_closed_port_print_one_masked_line(workdir, closed_port, command):
    uri = f"http://alice:{PASSWORD}@127.0.0.1:{closed_port}"
    result = run_cli([*command, "--tracking-uri", uri], workdir)
    assert result.returncode == 1
    [line] = error_lines(result)
    assert "does not answer (connection refused)" in line
    assert PASSWORD not in result.stdout + result.stderr


def test_load_against_a_stopped_server_fails_in_one_line(workdir, server_control):
    start, stop, free_port = server_control
    port = free_port()
    process = start(workdir / "server", port)
    uri = f"http://127.0.0.1:{port}"
    tracker = ExperimentTracker("loads", uri)
    with tracker.start_run() as run:
        run.log_metrics({"loss": 1.0}, step=0)
    stop(process)
    result = run_cli(["model", "load", f"runs:/{run.run_id}/model", "--tracking-uri", uri],
                     workdir)  # the subprocess guard fails this test if it takes minutes
    assert result.returncode == 1
    [line] = error_lines(result)
    assert "does not answer" in line and "Traceback" not in result.stderr
