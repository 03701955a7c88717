"""Fixtures of the command tests: the plain-MLflow store of tests/sdk (the CLI runner, `cli`, is
the suite's own)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

_BUILDER = Path(__file__).parent.parent / "sdk" / "populate_store.py"


def _build_once(base: Path) -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("populate_store_for_cli", _BUILDER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_once(base)


@pytest.fixture(scope="session")
def populated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Run ids of the plain-MLflow store, plus its ``uri``; read-only."""
    return _build_once(tmp_path_factory.getbasetemp())


@pytest.fixture
def populated_copy(populated: dict[str, str], workdir: Path) -> dict[str, str]:
    """A private copy of the populated store, for commands that change it."""
    db = workdir / "copy.db"
    shutil.copy(populated["db"], db)
    return {**populated, "uri": f"sqlite:///{db}", "db": str(db)}

