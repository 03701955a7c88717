"""The SDK's public names, and that importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import agentnn.sdk.nn_models as nn_models

PUBLIC = {"ExperimentInfo", "MetricPoint", "MetricWatch", "MigrationReport", "ModelManager",
          "ModelVersionInfo", "RunComparison", "RunDetail", "RunInfo", "RunWatch",
          "WatchSnapshot", "goal_of", "key_metrics", "objective_of"}


def test_every_exported_name_exists_and_nothing_else_is_exported():
    assert set(nn_models.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(nn_models, name).__module__.startswith("agentnn.sdk")


def test_importing_the_sdk_and_reading_sqlite_loads_no_mlflow(populated):
    probe = (
        "import sys\n"
        "from agentnn.sdk.nn_models import ModelManager\n"
        f"mm = ModelManager({populated['uri']!r})\n"
        "assert mm.best_run('routing', 'val_loss').run_name == 'lr-0.01'\n"
        "assert len(mm.list_runs('routing', limit=None)) == 8\n"
        "print([name for name in ('mlflow', 'torch', 'pandas') if name in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
