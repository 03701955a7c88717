"""Training progress as a user sees it: a bar that fits 80 columns on a terminal, one line per
epoch in a pipe or a log file, and nothing drawn before an error."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

AGENTNN = str(Path(sys.executable).with_name("agentnn"))
COMMAND_TIMEOUT = 600  # a guard against a hang, not a benchmark


def run_agentnn(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`agentnn ARGS` as a separate process whose stdout is a pipe (not a terminal)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([AGENTNN, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT)


def test_the_multi_task_bar_fits_80_columns_with_every_metric_whole():
    from rich.console import Console

    from agentnn.cli.train import progress_display, progress_metrics

    screen = io.StringIO()
    terminal = Console(file=screen, width=80, force_terminal=True, color_system=None)
    progress = progress_display(terminal)
    metrics = progress_metrics({"val_loss": 12.3456, "val_agent_acc": 0.91234,
                                "val_success_acc": 0.87654, "train_loss": 3.0})
    progress.add_task("epoch", total=100, completed=100, metrics=metrics)
    terminal.print(progress.get_renderable())

    lines = [line for line in screen.getvalue().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert len(lines[0].rstrip()) <= 80
    assert "100/100" in lines[0]
    assert lines[0].rstrip().endswith("loss 12.346 agent 0.912 success 0.877"), lines[0]


def test_without_a_terminal_every_epoch_prints_one_line(workdir):
    result = run_agentnn("train", "multi-task", "--dataset", "synthetic", "--epochs", "3",
                         cwd=workdir)

    assert result.returncode == 0, result.stderr
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epoch_lines] == ["1/3", "2/3", "3/3"]
    assert all("val_agent_acc" in line and "val_success_acc" in line for line in epoch_lines)
    assert not [line for line in result.stdout.splitlines()  # no bar frame in a log file
                if line.startswith("epoch") and "━" in line]


def test_an_error_before_the_first_epoch_draws_no_bar(workdir):
    short = workdir / "short.jsonl"
    made = run_agentnn("data", "synth", "--records", "10", str(short), cwd=workdir)
    assert made.returncode == 0, made.stderr

    result = run_agentnn("train", "multi-task", "--data", str(short), "--epochs", "2",
                         cwd=workdir)

    assert result.returncode == 1
    assert result.stdout == ""  # no bar, no empty frame
    assert result.stderr.strip().splitlines() == [
        "error: the training split has 6 samples; this trainer needs at least 8"]


def test_distributed_training_shows_its_epochs_too(workdir):
    result = run_agentnn("train", "distributed", "--dataset", "synthetic", "--epochs", "2",
                         "--nproc", "2", cwd=workdir)

    assert result.returncode == 0, result.stderr
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epoch_lines] == ["1/2", "2/2"]
    assert all("val_loss" in line for line in epoch_lines)
