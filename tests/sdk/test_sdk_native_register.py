"""register_model on a SQLite store writes the rows MLflow's own registry writes, without
importing MLflow, and hands what it was not compared for to MLflow."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from agentnn.errors import NotFoundError, RunHasNoModelError
from agentnn.sdk.nn_models import ModelManager

TIME_COLUMNS = {"creation_time", "last_updated_time"}
TABLES = ("registered_models", "model_versions", "model_version_tags",
          "registered_model_aliases")


def registry_rows(db: str) -> dict[str, list[tuple]]:
    """Every registry row, without the times, in a stable order."""
    with sqlite3.connect(db) as connection:
        found = {}
        for table in TABLES:
            columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
            kept = [column for column in columns if column not in TIME_COLUMNS]
            found[table] = sorted(connection.execute(
                f"SELECT {', '.join(kept)} FROM {table}").fetchall(), key=repr)
    return found


@pytest.fixture
def two_copies(populated_copy: dict[str, str], workdir: Path) -> tuple[dict, dict]:
    other = workdir / "other.db"
    shutil.copy(populated_copy["db"], other)
    return populated_copy, {**populated_copy, "uri": f"sqlite:///{other}", "db": str(other)}


def test_native_registration_writes_what_mlflow_writes(two_copies):
    native, through_mlflow = two_copies
    answers = []
    for store, direct in ((native, True), (through_mlflow, False)):
        manager = ModelManager(store["uri"], direct_reads=direct)
        manager.register_model(store["with_model"], "router")
        second = manager.register_model(store["with_model"][:8], "router", alias="champion")
        manager.register_model(store["with_model"], "router", alias="champion")  # moves it
        answers.append(second.to_dict() | {"created": None})
    assert answers[0] == answers[1]
    assert answers[0]["version"] == 2 and answers[0]["aliases"] == ["champion"]
    assert registry_rows(native["db"]) == registry_rows(through_mlflow["db"])
    versions = ModelManager(native["uri"], direct_reads=False).list_versions("router")
    assert [(v.version, v.aliases) for v in versions] == [(3, ["champion"]), (2, []), (1, [])]


def test_unknown_runs_and_runs_without_a_model_are_refused_as_through_mlflow(populated_copy):
    manager = ModelManager(populated_copy["uri"])
    with pytest.raises(NotFoundError, match="run 'f{32}' not found"):
        manager.register_model("f" * 32, "router")
    with pytest.raises(RunHasNoModelError):
        manager.register_model(populated_copy["failed"], "router")
    with pytest.raises(NotFoundError):
        ModelManager(populated_copy["uri"], direct_reads=False).list_versions("router")


def test_a_name_mlflow_refuses_is_refused_by_mlflow(populated_copy):
    with pytest.raises(Exception, match="cannot contain"):
        ModelManager(populated_copy["uri"]).register_model(populated_copy["with_model"], "a/b")


def test_registering_on_a_sqlite_store_does_not_import_mlflow(populated_copy):
    probe = (
        "import sys\n"
        "from agentnn.sdk.nn_models import ModelManager\n"
        f"version = ModelManager({populated_copy['uri']!r}).register_model("
        f"{populated_copy['with_model']!r}, 'router', alias='champion')\n"
        "print(version.version, version.aliases, 'mlflow' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "['champion']", "False"]
