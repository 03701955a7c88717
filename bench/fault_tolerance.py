"""What a tracking server outage costs a training loop, and what it loses (issue 10).

    .venv/bin/python bench/fault_tolerance.py [--steps 1500] [--metrics 10] [--outage 60]
    .venv/bin/python bench/fault_tolerance.py --steps 200 --outage 10   # a quick check

Two scenarios against a real ``mlflow server`` on a loopback port, each on fresh stores:

- outage: the run starts with the server up; the server is stopped, the loop goes on for
  ``--outage`` seconds, the server comes back on the same port and the run ends;
- offline start: the server is down when the run starts (the run falls back to ./mlruns); it
  comes back while the run goes, and the writer pushes the run there by itself.

Each loop step trains a small MLP on CPU (about 5 ms) and logs ``--metrics`` values. Prints, per
scenario: points logged, points that reached the server, and the loop's mean step time while the
server was up and while it was down (their ratio is the slowdown the outage caused).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

# --- defaults ------------------------------------------------------------------------------
INPUT, HIDDEN, CLASSES, BATCH = 256, 512, 8, 384  # about 5 ms a step on 2 CPU cores
STEPS = 1500  # steps logged before and after the outage
METRICS_PER_STEP = 10
OUTAGE = 60.0  # seconds the server stays down while the loop goes on
SERVER_START_TIMEOUT = 180.0  # seconds; `mlflow server` takes about 20 s to start here
ARRIVAL_TIMEOUT = 300.0  # seconds to wait for every point to reach the server


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(root: Path, port: int, attempts: int = 3) -> subprocess.Popen:
    """A real `mlflow server` whose store lives under ``root``; returns once it answers.

    Retried on the same port: a restart can find the port still held for a moment, and a
    loaded machine can take longer than one timeout.
    """
    for _ in range(attempts):
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server",
             "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
             "--artifacts-destination", str(root / "artifacts"),
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    return process
            except OSError:
                time.sleep(0.5)
        stop_server(process)
        time.sleep(2)
    raise RuntimeError(f"mlflow server on port {port} did not start")


def stop_server(process: subprocess.Popen) -> None:
    """Stop the server we started (and its workers), by its own process group."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)


class Loop:
    """A small MLP trained step by step; each step's time (training and logging) is kept."""

    def __init__(self, n_metrics: int) -> None:
        torch.manual_seed(0)
        self.model = nn.Sequential(nn.Linear(INPUT, HIDDEN), nn.ReLU(),
                                   nn.Linear(HIDDEN, CLASSES))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01)
        self.x, self.y = torch.randn(BATCH, INPUT), torch.randint(CLASSES, (BATCH,))
        self.n_metrics = n_metrics
        self.step = 0
        self.logged = 0

    def run(self, log: Callable[[dict[str, float], int], None], *, steps: int | None = None,
            seconds: float | None = None) -> list[float]:
        """Steps until ``steps`` are done or ``seconds`` have passed; returns step times."""
        times = []
        started = time.perf_counter()
        while (steps is None or len(times) < steps) and (
                seconds is None or time.perf_counter() - started < seconds):
            begin = time.perf_counter()
            self.optimizer.zero_grad()
            loss = nn.functional.cross_entropy(self.model(self.x), self.y)
            loss.backward()
            self.optimizer.step()
            value = loss.detach().item()
            log({f"m{i}": value + i for i in range(self.n_metrics)}, self.step)
            self.logged += self.n_metrics
            self.step += 1
            times.append(time.perf_counter() - begin)
        return times


def points_on_server(uri: str, experiment: str) -> int:
    """Metric points of every run of ``experiment`` on the server."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return 0
    total = 0
    for run in client.search_runs([found.experiment_id]):
        for key in run.data.metrics:
            total += len(client.get_metric_history(run.info.run_id, key))
    return total


def wait_for_points(uri: str, experiment: str, expected: int) -> int:
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    arrived = 0
    while time.monotonic() < deadline:
        arrived = points_on_server(uri, experiment)
        if arrived >= expected:
            break
        time.sleep(2)
    return arrived


def scenario(name: str, root: Path, steps: int, n_metrics: int, outage: float,
             down_at_start: bool) -> dict[str, float]:
    """One run through an outage; returns points logged and arrived, and mean step times."""
    from agentnn.mlflow_integration import ExperimentTracker

    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    work = root / name
    work.mkdir()
    os.chdir(work)
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ["AGENTNN_JOURNAL_DIR"] = str(work / "journal")
    server = None if down_at_start else start_server(work / "server", port)
    loop = Loop(n_metrics)
    try:
        tracker = ExperimentTracker(name)
        with tracker.start_run() as run:
            log = run.log_metrics
            if down_at_start:
                down = loop.run(log, seconds=outage)
                server = start_server(work / "server", port)
                up = loop.run(log, steps=steps)
            else:
                up = loop.run(log, steps=steps)
                stop_server(server)
                down = loop.run(log, seconds=outage)
                server = start_server(work / "server", port)
                up += loop.run(log, steps=steps)
        arrived = wait_for_points(uri, name, loop.logged)
    finally:
        if server is not None:
            stop_server(server)
    return {"logged": loop.logged, "arrived": arrived,
            "up_ms": 1000 * statistics.mean(up), "down_ms": 1000 * statistics.mean(down)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--metrics", type=int, default=METRICS_PER_STEP)
    parser.add_argument("--outage", type=float, default=OUTAGE)
    args = parser.parse_args()
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))  # a core for the writer
    with tempfile.TemporaryDirectory(prefix="agentnn-fault-") as tmp:
        for name, down_at_start in (("outage", False), ("offline-start", True)):
            result = scenario(name, Path(tmp), args.steps, args.metrics, args.outage,
                              down_at_start)
            print(f"{name:14s} points logged {result['logged']:7d}  reached the server "
                  f"{result['arrived']:7d}  step {result['up_ms']:.2f} ms up, "
                  f"{result['down_ms']:.2f} ms down (slowdown "
                  f"{result['down_ms'] / result['up_ms']:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
