"""How long a run takes to close when its store is away, against the same run on the embedded
store ("a team never waits on someone else's store").

    .venv/bin/python bench/fallback_close.py [--repeats 3]

The same one-epoch run (a small MLP on synthetic data, the loss logged every step) in a process
of its own, in a fresh folder each time, four ways:

- embedded: no tracking URI, the run goes to ./mlruns;
- dead postgresql://: a port nothing listens on; the run falls back to ./mlruns;
- silent server: a socket that accepts connections and never answers; the run falls back;
- pending pushes: embedded, in a folder that already holds runs waiting to be pushed to both
  (their writers stopped, so this run's writer tries the pushes while the run goes and ends).

The close time is from the run's last line inside ``with tracker.start_run()`` to the process's
exit (the end of the run, the drain, the hand-over at exit). Printed per way: the median of
``--repeats`` closes, and its difference from and ratio to the embedded one.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

# --- defaults ------------------------------------------------------------------------------
REPEATS = 3  # closes per way; the median is printed
RUN_TIMEOUT = 300.0  # seconds a run's process may take in all (start, epoch, close)

RUN = textwrap.dedent("""
    import time
    import torch
    from torch import nn
    from agentnn.mlflow_integration import ExperimentTracker

    torch.manual_seed(0)
    x, y = torch.randn(2048, 32), torch.randint(0, 4, (2048,))
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with ExperimentTracker("fallback-close").start_run(params={"epochs": 1}) as run:
        for step, first in enumerate(range(0, len(x), 64)):  # one epoch
            loss = nn.functional.cross_entropy(model(x[first:first + 64]), y[first:first + 64])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            run.log_metrics({"loss": loss.item()}, step=step)
        print(time.monotonic(), flush=True)
""")


class SilentServer:
    """Accepts connections on a loopback port and never answers."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.socket.accept()[0])
            except OSError:
                return


def dead_database() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"postgresql://bench:pw@127.0.0.1:{sock.getsockname()[1]}/mlflow"


def close_time(folder: Path, tracking_uri: str | None) -> tuple[float, int | None]:
    """(seconds from the run's last line to the process's exit, the pid of a writer it left
    behind or None)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AGENTNN_"))}
    env.update(AGENTNN_JOURNAL_DIR=str(folder / "journal"), OMP_NUM_THREADS="1")
    if tracking_uri is not None:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    process = subprocess.Popen([sys.executable, "-c", RUN], cwd=folder, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = process.communicate(timeout=RUN_TIMEOUT)
    exited = time.monotonic()
    if process.returncode != 0:
        raise SystemExit(f"the run failed:\n{err[-2000:]}")
    pid = None
    if "goes on after this one" in err:
        pid = int(err.split("goes on after this one", 1)[0].rsplit("(pid ", 1)[1].split(")")[0])
    return exited - float(out.split()[0]), pid


def stop(pid: int | None) -> None:
    """Stop the writer a run left behind (this benchmark started it)."""
    if pid is not None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()
    silent = SilentServer()
    dead = dead_database()
    ways = {"embedded": None, "dead postgresql://": dead, "silent server": silent.uri,
            "pending pushes": None}
    closes: dict[str, list[float]] = {way: [] for way in ways}
    with tempfile.TemporaryDirectory(prefix="agentnn-fallback-close-") as tmp:
        for repeat in range(args.repeats):
            for number, (way, uri) in enumerate(ways.items()):
                folder = Path(tmp) / f"{repeat}-{number}"
                folder.mkdir()
                if way == "pending pushes":
                    for intended in (dead, silent.uri):
                        stop(close_time(folder, intended)[1])
                    time.sleep(1.0)  # the stopped writers let go of the folder
                seconds, pid = close_time(folder, uri)
                stop(pid)
                closes[way].append(seconds)
    base = statistics.median(closes["embedded"])
    print(f"close of a one-epoch run, median of {args.repeats} (seconds)")
    print(f"{'way':<22}{'close':>8}{'minus embedded':>16}{'x embedded':>12}")
    for way, values in closes.items():
        median = statistics.median(values)
        print(f"{way:<22}{median:>8.2f}{median - base:>+16.2f}{median / base:>12.2f}")


if __name__ == "__main__":
    main()
