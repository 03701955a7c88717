"""The layering holds: every import-linter contract in pyproject.toml is kept.

The contracts (``[tool.importlinter]``) state the arrows of docs/architecture.md: ``cli`` on top,
then the SDK, trainers and managers, then ``mlflow_integration`` and ``data``, then ``config``
and ``errors``; the order inside ``mlflow_integration`` and ``nn_models``; a journal without
MLflow; private modules used only inside their package. Running them here makes a broken arrow
fail the test suite with import-linter's report, the chain of imports that breaks it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_import_contract_is_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
