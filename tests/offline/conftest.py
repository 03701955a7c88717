"""Fixtures for the offline tests: a second store to push to, and a server address that is down."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def second_store(workdir: Path, template_store: Path) -> str:
    """Another fresh SQLite store, as the target of a push."""
    path = workdir / "target.db"
    shutil.copyfile(template_store, path)
    return f"sqlite:///{path}"
