"""A new user's first commands print agentnn's output only: no line from MLflow, Optuna, tqdm,
uvicorn or Starlette unless `-v` asks for them (and then they do appear). Real processes, a
real store, a real UI server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

AGENTNN = str(Path(sys.executable).with_name("agentnn"))
COMMAND_TIMEOUT = 900  # a guard against a hang, not a benchmark
START_TIMEOUT = 600.0  # `mlflow server` starts in about 20 s here, minutes under load

LIBRARY_LINES = re.compile("|".join([
    r"\bINFO\b.*\bmlflow", r"\bWARNING\b.*\bmlflow\.",  # MLflow's logger
    r"Successfully registered model", r"Created version '", r"already exists\. Creating",
    r"View run ", r"View experiment at",  # MLflow's prints
    r"Downloading artifacts", r"it/s\]",  # tqdm
    r"^\[I \d{4}-", r"Trial \d+ finished",  # Optuna
    r"Uvicorn running", r"Started server process", r'"GET /[^"]* HTTP/1\.1"',  # uvicorn
    r"DeprecationWarning", r"Registry store URI not provided", r"Security middleware",
]), re.MULTILINE)


def library_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if LIBRARY_LINES.search(line)]


def agentnn(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(OMP_NUM_THREADS="1", AGENTNN_JOURNAL_DIR=str(cwd / "journal"))
    return subprocess.run([AGENTNN, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT)


def test_quickstart_prints_no_library_line_unless_verbose(workdir):
    first = agentnn("quickstart", "--epochs", "1", cwd=workdir)  # creates the store's tables
    second = agentnn("quickstart", "--epochs", "1", "--seed", "1", cwd=workdir)  # model exists
    for result in (first, second):
        assert result.returncode == 0, result.stderr
        assert library_lines(result.stdout + result.stderr) == []
    assert "registered:    agent-router version 2" in second.stdout

    loud = agentnn("quickstart", "--epochs", "1", "-v", cwd=workdir)
    assert loud.returncode == 0, loud.stderr
    assert library_lines(loud.stderr), loud.stderr  # -v: MLflow's INFO lines are back


def test_architecture_search_prints_no_trial_lines_or_bars_unless_verbose(workdir):
    quiet = agentnn("train", "architecture", "--dataset", "synthetic", "--trials", "3",
                    "--epochs", "1", "--workers", "2", cwd=workdir)
    assert quiet.returncode == 0, quiet.stderr
    assert library_lines(quiet.stdout + quiet.stderr) == []
    assert "trial 3/3" in quiet.stdout  # agentnn's own progress, one line per trial

    loud = agentnn("train", "architecture", "--dataset", "synthetic", "--trials", "2",
                   "--epochs", "1", "--study", "loud", "--verbose", cwd=workdir)
    assert loud.returncode == 0, loud.stderr
    assert re.search(r"Trial \d+ finished", loud.stderr), loud.stderr


@pytest.mark.server
@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_model_ui_prints_no_server_line_unless_verbose(verbose, workdir):
    store = agentnn("data", "synth", "logs.jsonl", "--records", "20", cwd=workdir)
    assert store.returncode == 0, store.stderr
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["AGENTNN_JOURNAL_DIR"] = str(workdir / "journal")
    process = subprocess.Popen(
        [AGENTNN, "model", "ui", "--port", str(port), *(["-v"] if verbose else [])],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/health", process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
            assert response.status == 200
        time.sleep(1)  # the access-log line, if any, is written after the answer
        os.kill(process.pid, signal.SIGTERM)  # this pid only: it stops its server's group
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=20)
    assert stdout.startswith(f"MLflow UI on http://127.0.0.1:{port}")
    if verbose:
        assert library_lines(stdout + stderr), stdout + stderr
    else:
        assert library_lines(stdout + stderr) == []
        log = workdir / "journal" / "ui.log"
        assert f"its log: {log}" in stdout
        assert library_lines(log.read_text()), "the server's lines are kept in its log"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"agentnn model ui exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {START_TIMEOUT} s")
