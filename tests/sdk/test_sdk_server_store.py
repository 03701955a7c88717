"""ModelManager against a real `mlflow server` on loopback: paging, best run, registry."""

from __future__ import annotations

import uuid

import pytest
from populate_store import ROUTING, build_in_subprocess

from agentnn.errors import NotFoundError, TrackingURIError
from agentnn.sdk.nn_models import ModelManager

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server_store(mlflow_server, tmp_path_factory):
    """The plain-MLflow runs, written to the server under a prefix of their own."""
    prefix = f"sdk-{uuid.uuid4().hex[:8]}-"
    ids = build_in_subprocess(mlflow_server, tmp_path_factory.mktemp("server-store"), prefix)
    return {**ids, "uri": mlflow_server, "routing": prefix + ROUTING}


def test_runs_page_through_the_server_until_complete(server_store):
    manager = ModelManager(server_store["uri"], page_size=3)
    runs = manager.list_runs(server_store["routing"], limit=None)
    assert len(runs) == 8 and len({run.run_id for run in runs}) == 8
    ordered = manager.list_runs(server_store["routing"], order_by="metrics.val_loss ASC", limit=4)
    assert [run.run_name for run in ordered][:3] == ["failed-run", "lr-0.01", "lr-0.001"]


def test_best_run_and_run_detail_come_from_the_server(server_store):
    manager = ModelManager(server_store["uri"])
    assert manager.best_run(server_store["routing"], "val_loss").run_id == server_store["lr_0.01"]
    parent = manager.get_run(server_store["parent"])
    assert parent.artifacts == ["notes/readme.txt"]
    assert sorted(parent.child_run_ids) == sorted([server_store["child_0"],
                                                   server_store["child_1"]])


def test_register_alias_and_versions_work_on_the_server(server_store):
    manager = ModelManager(server_store["uri"])
    name = f"router-{uuid.uuid4().hex[:8]}"
    first = manager.register_model(server_store["with_model"], name)
    manager.register_model(server_store["with_model"], name, alias="champion")
    manager.set_alias(name, "champion", version=first.version)
    versions = manager.list_versions(name)
    assert [(v.version, v.aliases) for v in versions] == [(2, []), (1, ["champion"])]
    assert versions[0].run_metrics == {"val_loss": 0.42}
    with pytest.raises(NotFoundError):
        manager.list_runs("no-such-experiment-on-the-server")


def test_a_server_that_does_not_answer_is_one_clear_error(workdir):
    from conftest_ports import closed_port_url

    with pytest.raises(TrackingURIError, match="does not answer"):
        ModelManager(closed_port_url()).list_experiments()
