"""Fixtures of the SDK tests: a store written by plain MLflow calls, built once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from populate_store import build_once


@pytest.fixture(scope="session")
def populated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Run ids of the plain-MLflow store (see populate_store.py), plus its ``uri``; read-only."""
    return build_once(tmp_path_factory.getbasetemp())


@pytest.fixture
def populated_copy(populated: dict[str, str], workdir: Path) -> dict[str, str]:
    """A private copy of the populated store, for tests that change it."""
    db = workdir / "copy.db"
    shutil.copy(populated["db"], db)
    return {**populated, "uri": f"sqlite:///{db}", "db": str(db)}
