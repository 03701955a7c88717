"""The app's read queries serve only the schema they were compared with MLflow on.

Pure functions over a real MLflow SQLite store (made by MLflow, then changed as an upgrade or
another tool would change it); the answers themselves are compared with MLflow's REST API on
PostgreSQL in test_fast_reads.py.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from agentnn.server import read_queries


@pytest.fixture
def store(template_store: Path, tmp_path: Path) -> Path:
    path = tmp_path / "store.db"
    shutil.copyfile(template_store, path)
    return path


def check(path: Path) -> read_queries.Schema:
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            return read_queries.check_schema(connection)
    finally:
        engine.dispose()


def test_mlflows_own_schema_is_served(store):
    assert check(store).revision in read_queries.TESTED_SCHEMA_REVISIONS


def test_an_untested_revision_is_declined(store):
    with sqlite3.connect(store) as db:
        db.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    with pytest.raises(read_queries.Unsupported, match="ffffffffffff"):
        check(store)


def test_a_store_holding_other_workspaces_is_declined(store):
    with sqlite3.connect(store) as db:
        db.execute("INSERT INTO experiments (experiment_id, name, lifecycle_stage, workspace) "
                   "VALUES (7, 'theirs', 'active', 'team-b')")
    with pytest.raises(read_queries.Unsupported, match="other workspaces"):
        check(store)


def test_a_database_without_mlflows_schema_is_declined(tmp_path):
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(read_queries.Unsupported, match="no MLflow schema"):
        check(empty)


def test_a_search_outside_the_subset_is_declined(store):
    engine = create_engine(f"sqlite:///{store}")
    with engine.connect() as connection:
        with pytest.raises(read_queries.Unsupported):
            read_queries.search_runs(connection, ["0"], "params.lr LIKE '0.%'", [], None)
        assert read_queries.search_runs(connection, ["0"], "params.lr = '0.1'", [], None) == []
    engine.dispose()
