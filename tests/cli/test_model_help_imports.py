"""`--help` of agentnn and of every `agentnn model` command loads neither MLflow nor PyTorch."""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = ["experiments", "runs", "show", "best", "compare", "plot", "watch", "register",
            "alias", "versions", "load", "ui", "migrate", "sync"]

PROBE = """
import sys
from agentnn.cli.main import app
try:
    app(sys.argv[1:])
except SystemExit as done:
    code = done.code
heavy = sorted(name for name in ("mlflow", "torch", "matplotlib", "sklearn", "pandas")
               if name in sys.modules)
print("HEAVY=" + ",".join(heavy))
sys.exit(code)
"""


@pytest.mark.parametrize("args", [["--help"], ["model", "--help"]]
                         + [["model", command, "--help"] for command in COMMANDS],
                         ids=lambda args: " ".join(args))
def test_help_answers_without_importing_heavy_packages(args):
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "HEAVY="


def test_listing_a_sqlite_store_does_not_import_mlflow(populated):
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "model", "runs", "routing", "--tracking-uri",
         populated["uri"], "--output", "json"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "HEAVY="


def test_listing_versions_on_a_sqlite_store_does_not_import_mlflow(populated_copy):
    from agentnn.sdk.nn_models import ModelManager

    ModelManager(populated_copy["uri"]).register_model(populated_copy["with_model"], "router")
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "model", "versions", "router", "--tracking-uri",
         populated_copy["uri"], "--output", "json"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert '"version": 1' in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "HEAVY="
