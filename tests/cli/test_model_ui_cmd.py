"""`agentnn model ui`: serves the MLflow UI on the resolved store, on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

START_TIMEOUT = 120.0  # seconds; `mlflow server` takes about 20 s to start here


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.server
def test_ui_serves_the_store_on_loopback_until_stopped(populated, workdir):
    port = free_port()
    log = open(workdir / "ui.log", "wb")  # noqa: SIM115 - closed in finally, after the server
    process = subprocess.Popen(
        [sys.executable, "-c", "from agentnn.cli.main import main; main()", "model", "ui",
         "--port", str(port), "--tracking-uri", populated["uri"]],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        body = wait_for(f"http://127.0.0.1:{port}/health", process)
        assert body.strip() == b"OK"
        experiments = wait_for(
            f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name"
            "?experiment_name=routing", process,
        )
        assert populated["routing_experiment"].encode() in experiments
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)
        log.close()


def wait_for(url: str, process: subprocess.Popen) -> bytes:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, "the UI server exited early"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read()
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {START_TIMEOUT} s")


def test_ui_refuses_a_store_that_is_already_a_server(cli):
    result = cli("model", "ui", "--tracking-uri", "http://127.0.0.1:1")
    assert result.exit_code == 1
    assert "already a server" in result.stderr
