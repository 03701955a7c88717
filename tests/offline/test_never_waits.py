"""A team never waits on someone else's store: a dead database or a silent server.

"Dead" is a ``postgresql://`` port nothing listens on; "silent" is a socket that accepts every
connection and never answers (a hung server, a black-holed proxy). Without bounds, MLflow and
the database drivers wait on them for a minute or more (retries, default timeouts). No test
here reads a clock: each run is bounded by a generous timeout such waits would hit
(:data:`CLOSE_BOUND`), and each checks what happened (where the run went, what the terminal
shows, whether the stores were asked at all). ``bench/fallback_close.py`` measures the times.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from offline_helpers import wait_for

CLOSE_BOUND = 20.0  # seconds from a run's last line to its process's exit; the waits this
#                     guards against took 30 to 60 s, a busy 2-core machine needs about 5
COMMAND_BOUND = 25.0  # seconds for a whole `agentnn model runs` (imports included)
STEPS = 50

RUN = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from agentnn.mlflow_integration import ExperimentTracker

    with ExperimentTracker("never-waits").start_run() as run:
        for step in range(STEPS):
            run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        flag = Path(sys.argv[1]) if len(sys.argv) > 1 else None
        deadline = time.monotonic() + 60
        while flag is not None and not flag.exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # the run goes on until the test says the push is under way
        print(run.run_id, "closing", flush=True)
""").replace("STEPS", str(STEPS))
# A line of a warning agentnn gives (``file:line: TrackingWarning: …``) or its source line.
AGENTNN_LINE = re.compile(r"^(\S+:\d+: TrackingWarning: |  \S)")


class SilentServer:
    """Accepts connections and never answers; counts them."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.accepted = 0
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:  # closed
                return
            self.accepted += 1
            self.held.append(connection)

    def close(self) -> None:
        self.socket.close()
        for connection in self.held:
            connection.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def dead_database() -> str:
    with socket.socket() as sock:  # a port nobody listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        return f"postgresql://alice:s3cretPw@127.0.0.1:{sock.getsockname()[1]}/mlflow"


@pytest.fixture
def folder(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The working folder with a journal folder of its own; a writer left behind in it is
    stopped by its pid at the end."""
    from agentnn.mlflow_integration.writer.loop import lock_holder, writer_running

    journal_dir = workdir / "journal"
    monkeypatch.setenv("AGENTNN_JOURNAL_DIR", str(journal_dir))
    yield workdir
    pid = lock_holder(journal_dir)
    if writer_running(journal_dir) and pid is not None and pid != os.getpid():
        os.kill(pid, signal.SIGTERM)


def run_and_close(folder: Path, tracking_uri: str | None, flag: Path | None = None,
                  **env: str) -> tuple[str, list[str]]:
    """One run in a process of its own: (its id, its stderr lines). Fails when the process
    is still there :data:`CLOSE_BOUND` seconds after the run's last line."""
    environment = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    if tracking_uri is not None:
        environment["MLFLOW_TRACKING_URI"] = tracking_uri
    environment.update(env)
    process = subprocess.Popen(
        [sys.executable, "-c", RUN, *([str(flag)] if flag else [])], cwd=folder,
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    assert process.stdout is not None and process.stderr is not None
    said = process.stdout.readline().split()  # the run's last line: the close begins
    try:
        process.wait(timeout=CLOSE_BOUND)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError(f"the run's process did not exit within {CLOSE_BOUND:.0f} s of "
                             f"its run's end:\n{process.stderr.read()[-3000:]}") from None
    err = process.stderr.read()
    assert process.returncode == 0 and said[1:] == ["closing"], err
    return said[0], [line for line in err.splitlines() if line.strip()]


def local_client(folder: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")


def left_behind(lines: list[str]) -> int:
    """The pid the run's last word names as the writer going on after it."""
    said = next(line for line in lines if "goes on after this one" in line)
    pid = int(said.split("(pid ", 1)[1].split(")", 1)[0])
    assert f"`kill {pid}` stops it" in said and "AGENTNN_WRITER_GIVE_UP" in said
    return pid


@pytest.mark.parametrize("store", ["dead database", "silent server"])
def test_a_fallen_back_run_closes_with_only_agentnn_lines_and_its_writer_gives_up_in_time(
    store: str, folder: Path, dead_database: str, silent_server: SilentServer
):
    from agentnn.mlflow_integration.writer.loop import writer_running

    intended = dead_database if store == "dead database" else silent_server.uri

    run_id, lines = run_and_close(folder, intended, AGENTNN_WRITER_GIVE_UP="3")

    assert all(AGENTNN_LINE.match(line) for line in lines), "\n".join(lines)
    assert "s3cretPw" not in "\n".join(lines)
    kept = local_client(folder).get_run(run_id)
    assert kept.info.status == "FINISHED" and kept.data.tags["agentnn.push"] == "pending"
    assert len(local_client(folder).get_metric_history(run_id, "loss")) == STEPS
    # The last word: who goes on, doing what, and how to stop it; then it gives up by itself.
    pid = left_behind(lines)
    assert f"run {run_id} to push to" in lines[-2] + lines[-1]
    journal_dir = folder / "journal"
    wait_for(lambda: not writer_running(journal_dir), timeout=90,
             what=f"the writer left behind (pid {pid}) gave up")
    note = local_client(folder).get_run(run_id).data.tags.get("agentnn.push_note", "")
    assert "stopped trying after 3 s" in note
    assert local_client(folder).get_run(run_id).data.tags["agentnn.push"] == "pending"
    assert (journal_dir / f"{run_id}.push").exists()  # still there for `push --pending`


def test_pending_pushes_to_a_dead_database_and_a_silent_server_do_not_hold_a_local_run(
    folder: Path, dead_database: str, silent_server: SilentServer
):
    journal_dir = folder / "journal"
    for intended in (dead_database, silent_server.uri):
        _, lines = run_and_close(folder, intended)
        os.kill(left_behind(lines), signal.SIGTERM)  # the next run's own writer takes over
    from agentnn.mlflow_integration.writer.loop import writer_running

    wait_for(lambda: not writer_running(journal_dir), timeout=30, what="the writers stopped")
    asked_before = silent_server.accepted
    flag = folder / "pushing"

    def flag_once_the_silent_server_is_asked() -> None:
        wait_for(lambda: silent_server.accepted > asked_before, timeout=60,
                 what="the local run's writer tried the pending push")
        flag.touch()

    watcher = threading.Thread(target=flag_once_the_silent_server_is_asked, daemon=True)
    watcher.start()
    run_id, lines = run_and_close(folder, None, flag)  # the embedded store, pushes in flight
    watcher.join(timeout=1)

    assert flag.exists(), "the pending push was never tried while the run went on"
    assert all(AGENTNN_LINE.match(line) for line in lines), "\n".join(lines)
    local = local_client(folder)
    assert local.get_run(run_id).info.status == "FINISHED"
    assert "agentnn.push" not in local.get_run(run_id).data.tags
    assert len(local.get_metric_history(run_id, "loss")) == STEPS
    assert len(list(journal_dir.glob("*.push"))) == 2  # both still pending, for later


def test_model_runs_against_a_silent_server_fails_with_one_line(
    folder: Path, silent_server: SilentServer
):
    agentnn = str(Path(sys.executable).with_name("agentnn"))
    env = {**os.environ, "MLFLOW_TRACKING_URI": silent_server.uri}

    result = subprocess.run([agentnn, "model", "runs"], cwd=folder, env=env,
                            capture_output=True, text=True, timeout=COMMAND_BOUND)

    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "does not answer" in lines[0] and silent_server.uri in lines[0]
    # Asked once, no retries: the capabilities question and the first read go out together.
    assert 1 <= silent_server.accepted <= 2
