"""Ctrl-C (or SIGTERM) in the middle of an epoch keeps the last finished epoch, and the command
printed on the way out goes on from there with one copy of every point."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mlflow

from agentnn.nn_models.training.checkpoints import list_checkpoints, load_checkpoint

# A small log, tiny batches (an epoch long enough to be cut in the middle) and a learning rate
# high enough that validation stops improving early: the last finished epoch is then no
# improving one, whose checkpoint the trainer would have written anyway.
CONFIG = {"mode": "classifier", "epochs": 30, "batch_size": 4, "learning_rate": 0.05,
          "early_stopping_patience": 0, "scheduler": "constant", "seed": 3}

SCRIPT = textwrap.dedent("""
    import json, os, signal, sys, threading
    from agentnn.data import build_interaction_dataset, synthesize_interactions
    from agentnn.errors import TrainingInterrupted
    from agentnn.mlflow_integration import ExperimentTracker
    from agentnn.nn_models import advanced_training as at

    config = json.loads(sys.argv[1])
    data = build_interaction_dataset(synthesize_interactions(600, 4, seed=3), seed=3)
    tracker = ExperimentTracker(at.EXPERIMENT, tracking_uri=sys.argv[2])

    def on_epoch(epoch, metrics):
        if epoch == 12:  # Ctrl-C a moment into epoch 13
            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()

    try:
        at.train(config, data, tracker=tracker, on_epoch=on_epoch)
    except TrainingInterrupted as stopped:
        print(json.dumps({"run_id": stopped.run_id, "epoch": stopped.epoch,
                          "checkpoint": str(stopped.checkpoint)}))
""")


def _steps(client: mlflow.MlflowClient, run_id: str, key: str) -> list[int]:
    return sorted(point.step for point in client.get_metric_history(run_id, key))


def test_ctrl_c_in_epoch_13_keeps_epoch_12_and_the_resume_starts_at_13(workdir, store_uri):
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(CONFIG), store_uri],
                          cwd=workdir, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    stopped = json.loads(done.stdout.strip().splitlines()[-1])
    checkpoint = load_checkpoint(stopped["checkpoint"])
    assert stopped["epoch"] == 12 and checkpoint.epoch == 12
    assert checkpoint.extra["early_stopping"]["best_epoch"] < 12  # not an improving epoch
    client = mlflow.MlflowClient(store_uri)
    assert client.get_run(stopped["run_id"]).info.status == "KILLED"

    from agentnn.data import build_interaction_dataset, synthesize_interactions
    from agentnn.mlflow_integration import ExperimentTracker
    from agentnn.nn_models import advanced_training as at

    epochs: list[int] = []
    data = build_interaction_dataset(synthesize_interactions(600, 4, seed=3), seed=3)
    result = at.train(CONFIG, data, tracker=ExperimentTracker(at.EXPERIMENT,
                                                              tracking_uri=store_uri),
                      resume_from=stopped["checkpoint"],
                      on_epoch=lambda epoch, metrics: epochs.append(epoch))

    assert result.run_id == stopped["run_id"] and epochs == list(range(13, 31))
    assert _steps(client, result.run_id, "val_loss") == list(range(1, 31))
    step_loss = _steps(client, result.run_id, "step_loss")
    assert len(step_loss) == len(set(step_loss)) == step_loss[-1]  # each step once, none lost
    assert client.get_run(result.run_id).info.status == "FINISHED"


def test_sigterm_prints_the_command_that_goes_on_and_that_command_finishes_the_run(
    workdir, store_uri
):
    (workdir / "cfg.yaml").write_text("".join(f"{key}: {value}\n" for key, value in
                                              {**CONFIG, "epochs": 8}.items()))
    env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri}
    command = ["train", "advanced", "--dataset", "synthetic", "--config", "cfg.yaml"]
    process = subprocess.Popen([sys.executable, "-m", "agentnn", *command], cwd=workdir,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 300
        while not list(workdir.glob("checkpoints/advanced_training/*/*")):
            assert time.monotonic() < deadline and process.poll() is None, "no first epoch"
            time.sleep(0.2)
        time.sleep(0.5)  # into the next epoch
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: interrupted after epoch "), last
    epoch = int(last.split("after epoch ", 1)[1].split(":", 1)[0])
    go_on = shlex.split(last.split("go on with: ", 1)[1])
    assert go_on[:len(command) + 1] == ["agentnn", *command]
    checkpoint = Path(go_on[go_on.index("--resume-from") + 1])
    assert load_checkpoint(checkpoint).epoch == epoch
    assert checkpoint in list_checkpoints(checkpoint.parent)

    resumed = subprocess.run([sys.executable, "-m", "agentnn", *go_on[1:]], cwd=workdir, env=env,
                             capture_output=True, text=True, timeout=600)

    assert resumed.returncode == 0, resumed.stderr
    client = mlflow.MlflowClient(store_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("advanced_training")
                                 .experiment_id])
    assert _steps(client, run.info.run_id, "val_loss") == list(range(1, 9))
    step_loss = _steps(client, run.info.run_id, "step_loss")
    assert len(step_loss) == len(set(step_loss)) == step_loss[-1]
