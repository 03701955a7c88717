"""`model runs --pending` and `model push --pending` on an 80-column terminal: every line fits,
one line per run, run ids by their 8 first characters (JSON keeps them whole)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from offline_helpers import wait_for
from test_auto_push import local_client

sys.path.insert(0, str(Path(__file__).parent.parent / "cli"))
from test_first_hour import MIN_CELL, NARROW, body_lines, column_widths

LONG_NAME = "a run with a name far longer than any table column"
SCRIPT = textwrap.dedent(f"""
    from agentnn.mlflow_integration import ExperimentTracker

    tracker = ExperimentTracker("routing")
    for index in range(2):
        with tracker.start_run(run_name="{LONG_NAME} " + str(index)) as run:
            run.log_metrics({{"loss": 0.5}}, step=0)
        print(run.run_id, flush=True)
""")


def fits(text: str, rows: int) -> None:
    """Every line within 80 columns, ``rows`` rows of one line each, no column below 6."""
    assert max(map(len, text.splitlines())) <= NARROW, text
    assert len(body_lines(text)) == rows, text
    (widths,) = column_widths(text)
    assert min(widths.values()) >= MIN_CELL, widths


@pytest.mark.server
def test_runs_pending_and_push_pending_fit_80_columns_with_short_run_ids(
    dead_server: str, workdir: Path, start_server, cli, monkeypatch
):
    from agentnn.mlflow_integration.writer.loop import writer_running

    monkeypatch.setenv("AGENTNN_WRITER_GIVE_UP", "3")
    journal_dir = workdir / "journal"  # the folder's own writer, not the session's
    monkeypatch.setenv("AGENTNN_JOURNAL_DIR", str(journal_dir))
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=workdir, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    run_ids = done.stdout.split()
    wait_for(lambda: not writer_running(journal_dir), timeout=60, what="the writer gave up")

    listed = cli("model", "runs", "--pending", columns=NARROW)
    assert listed.exit_code == 0, listed.output
    fits(listed.stdout, 2)
    for run_id in run_ids:
        assert run_id[:8] in listed.stdout and run_id not in listed.stdout
    notes = [run["tags"].get("agentnn.push_note") or "waiting for its server" for run in json.loads(
        cli("model", "runs", "--pending", "--output", "json").stdout)]
    assert all(note[:24] in listed.stdout for note in notes)  # why, in the room names leave

    start_server(int(dead_server.rsplit(":", 1)[1]))
    pushed = cli("model", "push", "--pending", columns=NARROW)
    assert pushed.exit_code == 0, pushed.output
    fits(pushed.stdout, 2)
    local = local_client(workdir)
    for run_id in run_ids:
        target, copy_id = local.get_run(run_id).data.tags["agentnn.pushed_to"].split()
        assert target == dead_server and len(copy_id) == 32
        for shown in (run_id, copy_id):
            assert shown[:8] in pushed.stdout and shown not in pushed.stdout
    assert json.loads(cli("model", "push", "--pending", "--output", "json").stdout) == []
