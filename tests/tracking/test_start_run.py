"""start_run: readable run names, automatic tags, and a status that always matches how it ended."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mlflow
import pytest

RUN_NAME = re.compile(r"^tests-\d{8}-\d{6}-[0-9a-f]{4}$")


def test_generated_run_name_is_readable_and_sortable(tracker, client):
    with tracker.start_run() as first:
        pass
    assert RUN_NAME.match(first.run_name)
    assert client.get_run(first.run_id).info.run_name == first.run_name


def test_every_run_gets_automatic_tags(tracker, client):
    with tracker.start_run(run_name="tagged", tags={"stage": "dev"}) as run:
        pass
    tags = client.get_run(run.run_id).data.tags
    assert tags["stage"] == "dev"
    for key in ("agentnn.host", "agentnn.python", "agentnn.mlflow_version",
                "agentnn.torch_version", "agentnn.version", "agentnn.command"):
        assert tags[key], key


def test_git_commit_and_dirty_flag_are_tagged_inside_a_repository(store_uri, workdir):
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                    "--allow-empty", "-m", "init"], check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    from agentnn.mlflow_integration import ExperimentTracker

    with ExperimentTracker("git", tracking_uri=store_uri).start_run() as run:
        pass
    tags = mlflow.MlflowClient(store_uri).get_run(run.run_id).data.tags
    assert tags["agentnn.git.commit"] == commit
    assert tags["agentnn.git.dirty"] == "false"


def test_normal_exit_finishes_the_run(tracker, client):
    with tracker.start_run() as run:
        run.log_metric("x", 1.0)
    assert client.get_run(run.run_id).info.status == "FINISHED"


def test_exception_fails_the_run_and_still_propagates(tracker, client):
    with pytest.raises(ZeroDivisionError):
        with tracker.start_run() as run:
            run.log_metric("before", 1.0)
            1 / 0  # noqa: B018
    info = client.get_run(run.run_id)
    assert info.info.status == "FAILED"
    assert info.data.metrics["before"] == 1.0  # what was logged before the error is kept


def test_keyboard_interrupt_kills_the_run(tracker, client):
    with pytest.raises(KeyboardInterrupt):
        with tracker.start_run() as run:
            raise KeyboardInterrupt
    assert client.get_run(run.run_id).info.status == "KILLED"


def test_ctrl_c_in_a_real_training_process_marks_the_run_killed(store_uri, workdir: Path):
    script = workdir / "train.py"
    script.write_text(textwrap.dedent(f"""
        import faulthandler, signal, sys, time
        # As a program started from a terminal: Ctrl-C raises KeyboardInterrupt even when the
        # process that started it ignores SIGINT (an ignored signal stays ignored across exec).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        faulthandler.register(signal.SIGUSR2, all_threads=True)  # where it hangs, if it does
        from agentnn.mlflow_integration import ExperimentTracker
        tracker = ExperimentTracker("ctrl-c", tracking_uri={store_uri!r})
        with tracker.start_run() as run:
            print(run.run_id, flush=True)
            step = 0
            while True:
                run.log_metric("loss", 1.0, step=step)
                step += 1
                time.sleep(0.01)
    """))
    # A journal folder of its own: the session's shared folder may be busy with another test's
    # unanswering store, and this run's drain would wait behind it.
    env = {**os.environ, "AGENTNN_JOURNAL_DIR": str(workdir / "journal")}
    errors = workdir / "stderr.txt"  # a file, not a pipe: a full pipe would block the process
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                               stderr=errors.open("w"), text=True, env=env)
    try:
        run_id = process.stdout.readline().strip()
        time.sleep(1.0)
        os.kill(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGUSR2)
            time.sleep(2)
            process.kill()
            process.wait()
            pytest.fail("the process did not end after Ctrl-C; its threads:\n"
                        + errors.read_text(errors="replace"))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    run = mlflow.MlflowClient(store_uri).get_run(run_id)
    assert run.info.status == "KILLED"
    assert len(mlflow.MlflowClient(store_uri).get_metric_history(run_id, "loss")) > 10


def test_nested_run_is_a_child_of_the_active_run(tracker, client):
    with tracker.start_run(run_name="parent") as parent:
        with tracker.start_run(run_name="child", nested=True) as child:
            child.log_metric("x", 1.0)
    tags = client.get_run(child.run_id).data.tags
    assert tags["mlflow.parentRunId"] == parent.run_id
    assert client.get_run(parent.run_id).info.status == "FINISHED"
    assert client.get_run(child.run_id).info.status == "FINISHED"


def test_logging_after_the_run_ended_is_refused(tracker):
    from agentnn.errors import TrackingError

    with tracker.start_run() as run:
        pass
    with pytest.raises(TrackingError, match="has ended"):
        run.log_metric("late", 1.0)


def test_artifact_is_uploaded(tracker, client, workdir: Path):
    report = workdir / "report.html"
    report.write_text("<h1>ok</h1>")
    with tracker.start_run() as run:
        run.log_artifact(report)
    files = [item.path for item in client.list_artifacts(run.run_id)]
    assert files == ["report.html"]
