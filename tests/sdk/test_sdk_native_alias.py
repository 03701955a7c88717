"""Moving and removing an alias on a SQLite store writes the rows MLflow's own registry writes,
refuses what MLflow refuses with the same error, and does not import MLflow."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from test_sdk_native_register import registry_rows, two_copies  # noqa: F401 (a fixture)

from agentnn.errors import InputError, NotFoundError
from agentnn.sdk.nn_models import ModelManager


def test_setting_moving_and_deleting_an_alias_writes_what_mlflow_writes(two_copies):  # noqa: F811
    native, through_mlflow = two_copies
    answers = []
    for store, direct in ((native, True), (through_mlflow, False)):
        setup = ModelManager(store["uri"], direct_reads=False)
        for _ in range(3):
            setup.register_model(store["with_model"], "router")
        manager = ModelManager(store["uri"], direct_reads=direct)
        first = manager.set_alias("router", "champion", 1)
        manager.set_alias("router", "challenger", 3)
        moved = manager.set_alias("router", "champion", "2")  # moves it from version 1
        manager.delete_alias("router", "challenger")
        answers.append([info.to_dict() | {"created": None} for info in (first, moved)])
    assert answers[0] == answers[1]
    assert answers[0][1]["version"] == 2 and answers[0][1]["aliases"] == ["champion"]
    assert answers[0][1]["run_metrics"]  # the metrics of the run behind it, as MLflow's path
    assert registry_rows(native["db"]) == registry_rows(through_mlflow["db"])
    versions = ModelManager(native["uri"], direct_reads=False).list_versions("router")
    assert [(v.version, v.aliases) for v in versions] == [(3, []), (2, ["champion"]), (1, [])]


def refusal(call, *args) -> tuple[type, str]:
    with pytest.raises((NotFoundError, InputError)) as caught:
        call(*args)
    return type(caught.value), str(caught.value)


def test_unknown_models_versions_and_aliases_are_refused_as_through_mlflow(two_copies):  # noqa: F811
    native, through_mlflow = two_copies
    refusals = []
    for store, direct in ((native, True), (through_mlflow, False)):
        ModelManager(store["uri"], direct_reads=False).register_model(store["with_model"],
                                                                      "router")
        manager = ModelManager(store["uri"], direct_reads=direct)
        refusals.append([
            refusal(manager.set_alias, "nobody", "champion", 1),
            refusal(manager.set_alias, "router", "champion", 7),
            refusal(manager.set_alias, "router", "latest", 1),
            refusal(manager.delete_alias, "nobody", "champion"),
            refusal(manager.delete_alias, "router", "champion"),
        ])
    assert refusals[0] == refusals[1]
    assert refusals[0][1][0] is NotFoundError and "router/7" in refusals[0][1][1]
    assert refusals[0][4] == (NotFoundError, "alias 'router@champion' not found")
    assert registry_rows(native["db"]) == registry_rows(through_mlflow["db"])


def test_model_alias_on_a_sqlite_store_does_not_import_mlflow(populated_copy):
    ModelManager(populated_copy["uri"], direct_reads=False).register_model(
        populated_copy["with_model"], "router")
    probe = (
        "import sys\n"
        "from agentnn.cli.main import app\n"
        "for args in (['champion', '1'], ['champion', '--delete']):\n"
        "    try:\n"
        f"        app(['model', 'alias', 'router', *args, '--tracking-uri', "
        f"{populated_copy['uri']!r}])\n"
        "    except SystemExit as done:\n"
        "        assert not done.code, done.code\n"
        "print('mlflow' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AGENTNN_"))}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "False"
    assert "router@champion -> version 1" in done.stdout + done.stderr
    assert "removed router@champion" in done.stdout + done.stderr
    versions = ModelManager(populated_copy["uri"], direct_reads=False).list_versions("router")
    assert versions[0].aliases == []
