"""The README's main job: `agentnn quickstart` in a fresh folder, on the embedded store."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import mlflow


def test_quickstart_in_a_fresh_folder_trains_tracks_and_registers(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AGENTNN_"))}
    env["AGENTNN_CACHE_DIR"] = str(tmp_path / "cache")
    result = subprocess.run(
        [sys.executable, "-m", "agentnn", "quickstart", "--epochs", "2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    run_id = re.search(r"run id:\s+([0-9a-f]{32})", result.stdout).group(1)
    store = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert f"mlflow ui --backend-store-uri {store}" in result.stdout
    client = mlflow.MlflowClient(store)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "advanced_training"
    assert {"val_loss", "val_acc", "train_loss"} <= set(run.data.metrics)
    assert run.data.metrics["val_acc"] > 0.5  # four agents: chance is 0.25
    champion = client.get_model_version_by_alias("agent-router", "champion")
    assert champion.run_id == run_id
    # every journal is sent and removed: by the process's writer thread, or (when the process
    # ended first) by the writer process it handed the rest to, which exits once done
    journal_dir = tmp_path / "mlruns" / "journal"
    deadline = time.monotonic() + 60  # a hang, not a timing
    while list(journal_dir.glob("*.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not list(journal_dir.glob("*.jsonl"))
