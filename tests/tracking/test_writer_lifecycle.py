"""The writer process has one owner; a run's status is set once; a dead store never holds an
exit."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mlflow
import pytest
from writer_helpers import GUARD, wait_until

from agentnn.mlflow_integration.writer.loop import LOCK_NAME, writer_running
from agentnn.mlflow_integration.writer.owner import WriterProcess

SRC = Path(__file__).resolve().parents[2] / "src" / "agentnn"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_folder_writer(journal_dir: Path, *, expected: bool = False) -> None:
    """Stop the writer a test's subprocess left behind (by the pid in its lock file).

    ``expected``: the subprocess handed unsent points to a writer process as it exited; that
    process takes the lock only after the exit, so wait for it to hold it before reading it.
    """
    if expected:
        wait_until(lambda: writer_running(journal_dir))
    lock = journal_dir / LOCK_NAME
    if lock.exists() and writer_running(journal_dir):
        os.kill(int(lock.read_text()), signal.SIGTERM)


def test_status_and_end_time_are_set_once(tracker, client):
    with tracker.start_run() as run:
        run.log_metrics({"loss": 0.5}, step=1)
    ended = client.get_run(run.run_id).info
    journal_dir = tracker.journal_dir

    # The writer still reads the journal's end record after the run returned; it must not
    # set the status or the end time a second time.
    assert wait_until(lambda: not list(journal_dir.glob(f"{run.run_id}.*.jsonl")))
    again = client.get_run(run.run_id).info
    assert ended.status == again.status == "FINISHED"
    assert ended.end_time == again.end_time


def test_mlflow_private_run_stack_is_not_touched():
    users = [path for path in SRC.rglob("*.py") if "_active_run_stack" in path.read_text()]
    assert users == []


def test_the_run_is_mlflows_active_run_until_it_ends(tracker):
    with tracker.start_run() as run:
        assert mlflow.active_run().info.run_id == run.run_id
    assert mlflow.active_run() is None


def test_one_owner_starts_the_folders_writer_and_keeps_its_handle(workdir: Path):
    journal_dir = workdir / "owned-journal"
    owner = WriterProcess.for_folder(journal_dir)
    assert WriterProcess.for_folder(journal_dir) is owner
    try:
        assert owner.ensure_running() is True
        assert owner.process is not None and owner.process.poll() is None
        assert wait_until(lambda: writer_running(journal_dir))
        assert owner.ensure_running() is False  # the folder has its writer
        owner.stop(timeout=5)  # bounded; the writer itself goes on until its work is done
        assert owner.process is not None
    finally:
        if owner.process is not None and owner.process.poll() is None:
            owner.process.terminate()
            owner.process.wait(timeout=60)


def test_a_process_whose_server_is_a_dead_port_finishes_its_run_and_exits(workdir: Path):
    port = free_port()  # nothing listens there
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}",
           "AGENTNN_JOURNAL_DIR": str(workdir / "journal"), "AGENTNN_DRAIN_TIMEOUT": "3"}
    script = workdir / "train.py"
    script.write_text(textwrap.dedent("""
        from agentnn.mlflow_integration import ExperimentTracker
        with ExperimentTracker("dead-port").start_run() as run:
            for step in range(300):
                run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        print(run.run_id, flush=True)
    """))

    try:
        trainer = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                                 timeout=GUARD, env=env)
    finally:
        stop_folder_writer(workdir / "journal", expected=True)  # it would retry the dead port

    assert trainer.returncode == 0, trainer.stderr
    run_id = trainer.stdout.strip()
    local = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}")
    assert local.get_run(run_id).info.status == "FINISHED"
    assert len(local.get_metric_history(run_id, "loss")) == 300


@pytest.mark.slow
def test_a_run_ends_and_its_process_exits_while_the_store_does_not_answer(
    store_uri: str, workdir: Path
):
    journal_dir = workdir / "journal"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri,
           "AGENTNN_JOURNAL_DIR": str(journal_dir), "AGENTNN_DRAIN_TIMEOUT": "3"}
    script = workdir / "train.py"
    script.write_text(textwrap.dedent("""
        import sys
        from agentnn.mlflow_integration import ExperimentTracker
        with ExperimentTracker("stuck-store").start_run() as run:
            print(run.run_id, flush=True)
            sys.stdin.readline()  # the test locks the store here
            for step in range(300):
                run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        print("left the block", flush=True)
    """))
    trainer = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, start_new_session=True)
    database = sqlite3.connect(store_uri.removeprefix("sqlite:///"), isolation_level=None)
    try:
        run_id = trainer.stdout.readline().strip()
        database.execute("BEGIN EXCLUSIVE")  # no one else reads or writes the store now
        out, err = trainer.communicate("\n", timeout=GUARD)
    finally:
        database.close()  # the store answers again
        if trainer.poll() is None:
            os.killpg(trainer.pid, signal.SIGKILL)
            trainer.wait()
    assert trainer.returncode == 0, err
    assert "left the block" in out
    assert "agentnn model sync" in err  # the records stay in the journal for the writer

    result = subprocess.run([sys.executable, "-m", "agentnn", "model", "sync", "--timeout", "60"],
                            capture_output=True, text=True, timeout=GUARD, env=env)

    assert result.returncode == 0, result.stderr
    client = mlflow.MlflowClient(store_uri)
    assert sorted(p.step for p in client.get_metric_history(run_id, "loss")) == list(range(300))
    assert client.get_run(run_id).info.status == "FINISHED"


def test_a_run_that_ended_normally_leaves_no_writer_process_behind(workdir, store_uri):
    journal_dir = workdir / "journal"  # a folder of its own: no other test's writer in it
    script = textwrap.dedent(f"""
        import os
        from agentnn.mlflow_integration import ExperimentTracker
        tracker = ExperimentTracker("lifecycle", tracking_uri={store_uri!r},
                                    journal_dir={str(journal_dir)!r})
        with tracker.start_run() as run:
            for step in range(100):
                run.log_metrics({{"loss": 1.0 / (step + 1)}}, step=step)
        print(os.getpid(), run.run_id)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    pid, run_id = done.stdout.split()

    def writers() -> set[str]:
        lines = (journal_dir / "writer.log").read_text().splitlines()
        return {line.split("[", 1)[1].split("]", 1)[0] for line in lines if "[" in line}

    # A writer process handed the folder would import MLflow and log within seconds: give it
    # the time it would need, then see that there was none.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and writers() == {pid}:
        time.sleep(0.5)
    assert writers() == {pid}  # only the run's own process wrote: nothing was handed over
    assert not writer_running(journal_dir)
    run = mlflow.MlflowClient(store_uri).get_run(run_id)
    assert run.info.status == "FINISHED"
    assert len(mlflow.MlflowClient(store_uri).get_metric_history(run_id, "loss")) == 100
