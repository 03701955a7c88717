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

START_TIMEOUT = 600.0  # seconds; `mlflow server` starts in about 20 s here, minutes under load


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.server
def test_ui_serves_the_store_on_loopback_and_sigterm_stops_its_server(populated, workdir):
    port = free_port()
    log = open(workdir / "ui.log", "wb")  # noqa: SIM115 - closed in finally, after the server
    process = subprocess.Popen(
        [sys.executable, "-c", "from agentnn.cli.main import main; main()", "model", "ui",
         "--port", str(port), "--tracking-uri", populated["uri"]],
        stdout=log, stderr=subprocess.STDOUT,
    )
    tree: list[int] = []
    try:
        body = wait_for(f"http://127.0.0.1:{port}/health", process)
        assert body.strip() == b"OK"
        experiments = wait_for(
            f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name"
            "?experiment_name=routing", process,
        )
        assert populated["routing_experiment"].encode() in experiments
        tree = descendants(process.pid)
        assert tree, "the server runs as a child of the command"
        os.kill(process.pid, signal.SIGTERM)  # as a service manager stops it: this pid only
        assert process.wait(timeout=60) == 128 + signal.SIGTERM
        assert wait_until_gone(tree) == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=20)
        for pid in alive(tree):  # only what this test started, by pid
            os.kill(pid, signal.SIGKILL)
        log.close()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()  # noqa: SIM115
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def alive(pids: list[int]) -> list[int]:
    """The pids still running (a zombie waiting for its parent counts as gone)."""
    living = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            living.append(pid)
    return living


def wait_until_gone(pids: list[int], timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive(pids)


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
