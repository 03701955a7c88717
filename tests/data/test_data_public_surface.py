"""agentnn.data: every exported name resolves, and importing the package stays light."""

from __future__ import annotations

import subprocess
import sys

import agentnn.data


def test_every_exported_name_resolves() -> None:
    for name in agentnn.data.__all__:
        assert getattr(agentnn.data, name) is not None, name


def test_importing_the_package_does_not_import_numpy_or_torch() -> None:
    script = (
        "import sys, agentnn.data, agentnn.cli.data; "
        "print(sorted(m for m in ('numpy', 'torch', 'sklearn', 'mlflow') if m in sys.modules))"
    )
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True, timeout=120)
    assert child.stdout.strip() == "[]"
