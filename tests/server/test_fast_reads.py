"""The app's fast reads answer exactly what MLflow's REST API answers, under the same permissions.

One experiment family is written through MLflow's own client on the PostgreSQL-backed
`mlflow server --app-name agentnn` (NaN and missing metrics, shared start times, failed, running
and deleted runs, a parent with children, artifacts, a logged model, a registered model with
aliases). Every question is then asked twice of the same server as the same user: through the
app (one request, SQL on the server) and through MLflow's REST API (``direct_reads=False``);
the answers must be equal value for value.
"""

from __future__ import annotations

import json
import math
import random
import socket
import subprocess
import sys

import pytest
import team_servers as ts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentnn.errors import NotFoundError, PermissionDeniedError
from agentnn.sdk import _server_reader
from agentnn.sdk.nn_models import ModelManager

LRS = ["0.001", "0.01", "0.1"]
STAGES = ["dev", "prod"]
STATUSES = ["FINISHED", "FAILED", "RUNNING", "KILLED"]
BASE_TIME = 1_700_000_000_000
HISTORY_POINTS = 3000


@pytest.fixture(scope="module")
def family(agentnn_server, tmp_path_factory) -> dict:
    """Experiments fr-alpha and fr-beta (alice's), fr-hidden (rita may not read it), a model."""
    alice = agentnn_server.as_user(ts.ALICE, ts.ALICE_PASSWORD)
    import mlflow

    client = mlflow.MlflowClient(alice, registry_uri=alice)
    rng = random.Random(3)
    experiments = [client.create_experiment("fr-alpha"), client.create_experiment("fr-beta")]
    run_ids = []
    for index in range(24):
        experiment_id = experiments[index % 2]
        start = BASE_TIME + (index // 3) * 1000
        run = client.create_run(experiment_id, start_time=start, run_name=f"run-{index % 5}")
        run_id = run.info.run_id
        run_ids.append(run_id)
        if index % 5:
            client.log_param(run_id, "lr", rng.choice(LRS))
        if index % 4:
            client.set_tag(run_id, "stage", rng.choice(STAGES))
        for step in range(rng.randint(0, 3)):
            loss = math.nan if index % 9 == 0 else round(rng.uniform(0, 2), 2)
            client.log_metric(run_id, "loss", loss, step=step, timestamp=start + step)
            if index % 3:
                client.log_metric(run_id, "acc", round(rng.uniform(0, 1), 1), step=step,
                                  timestamp=start + step)
        if STATUSES[index % 4] != "RUNNING":
            client.set_terminated(run_id, status=STATUSES[index % 4], end_time=start + 500)
        if index % 11 == 10:
            client.delete_run(run_id)
    parent = run_ids[0]
    for child in run_ids[2:8:2]:
        client.set_tag(child, "mlflow.parentRunId", parent)
    folder = tmp_path_factory.mktemp("artifacts")
    (folder / "notes.txt").write_text("hello")
    (folder / "sub").mkdir()
    (folder / "sub" / "weights.bin").write_bytes(b"\0" * 10)
    client.log_artifacts(parent, str(folder))
    client.create_logged_model(experiments[0], source_run_id=parent, name="fr-model")
    from mlflow.entities import Metric

    long_run = client.create_run(experiments[0], start_time=BASE_TIME, run_name="long").info
    rng_points = [Metric("curve", math.sin(step / 50) + rng.gauss(0, 0.1), BASE_TIME + step, step)
                  for step in range(HISTORY_POINTS)]
    for first in range(0, HISTORY_POINTS, 1000):
        client.log_batch(long_run.run_id, metrics=rng_points[first:first + 1000])
    client.set_terminated(long_run.run_id)
    client.create_registered_model("fr-router")
    for run_id in run_ids[1:4]:
        client.create_model_version("fr-router", f"runs:/{run_id}/model", run_id=run_id)
    client.set_registered_model_alias("fr-router", "champion", 2)
    client.set_registered_model_alias("fr-router", "canary", 3)
    hidden = client.create_experiment("fr-hidden")
    client.create_run(hidden, run_name="secret")
    client.create_registered_model("fr-hidden-model")
    agentnn_server.admin_request("/api/3.0/mlflow/users/permissions/grant", {
        "username": ts.RITA, "resource_type": "experiment", "resource_id": hidden,
        "permission": "DENY"})
    agentnn_server.admin_request("/api/3.0/mlflow/users/permissions/grant", {
        "username": ts.RITA, "resource_type": "registered_model",
        "resource_id": "fr-hidden-model", "permission": "DENY"})
    return {"alice": alice, "rita": agentnn_server.as_user(ts.RITA, ts.RITA_PASSWORD),
            "parent": parent, "long": long_run.run_id, "hidden": hidden}


@pytest.fixture(scope="module")
def readers(family) -> dict:
    return {"app": ModelManager(family["alice"]),
            "rest": ModelManager(family["alice"], direct_reads=False)}


def summary(runs: list) -> list[tuple]:
    def plain(metrics: dict) -> dict:
        return {key: "nan" if math.isnan(value) else value for key, value in metrics.items()}

    return [(run.run_id, run.run_name, run.experiment_id, run.status, run.start_time_ms,
             run.end_time_ms, plain(run.metrics), run.params, run.tags, run.lifecycle_stage)
            for run in runs]


def test_the_app_announces_its_reads_and_the_client_takes_them(readers):
    served = readers["app"]._server.served()
    assert {"experiments", "runs", "best", "run", "history", "versions", "match"} <= served


clauses = st.one_of(
    st.builds(lambda key, op, value: f"metrics.{key} {op} {value}",
              st.sampled_from(["loss", "acc", "never"]), st.sampled_from(["<", ">=", "=", "!="]),
              st.sampled_from([0, 0.5, 1.5])),
    st.builds(lambda op, value: f"params.lr {op} '{value}'", st.sampled_from(["=", "!="]),
              st.sampled_from(LRS)),
    st.builds(lambda op, value: f"tags.stage {op} '{value}'", st.sampled_from(["=", "!="]),
              st.sampled_from(STAGES)),
    st.builds(lambda op, value: f"attributes.status {op} '{value}'",
              st.sampled_from(["=", "!="]), st.sampled_from(STATUSES)),
    st.builds(lambda value: f"attributes.run_name = '{value}'",
              st.sampled_from(["run-1", "run-3"])),
    st.builds(lambda op, offset: f"attributes.start_time {op} {BASE_TIME + offset}",
              st.sampled_from(["<", ">="]), st.sampled_from([0, 3000, 5000])),
)
orders = st.lists(
    st.builds(lambda term, direction: f"{term}{direction}", st.sampled_from([
        "metrics.loss", "metrics.acc", "params.lr", "tags.stage", "attributes.start_time",
        "attributes.end_time", "attributes.status", "attributes.run_name"]),
        st.sampled_from(["", " ASC", " DESC"])),
    max_size=2, unique_by=lambda clause: clause.split()[0],
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(conditions=st.lists(clauses, max_size=2), order_by=orders,
       limit=st.one_of(st.none(), st.integers(min_value=1, max_value=10)),
       experiment=st.sampled_from([None, "fr-alpha", "fr-beta"]),
       include_deleted=st.booleans())
def test_run_searches_through_the_app_equal_mlflows_rest_answers(
    readers, conditions, order_by, limit, experiment, include_deleted
):
    filter_string = " and ".join(conditions) or None
    answers = [summary(readers[way].list_runs(experiment, filter=filter_string,
                                              order_by=order_by, limit=limit,
                                              include_deleted=include_deleted))
               for way in ("app", "rest")]
    assert answers[0] == answers[1]


def test_a_search_beyond_the_apps_subset_is_answered_through_mlflows_rest_api(readers, caplog):
    import logging

    clause = "params.lr LIKE '0.0%'"  # LIKE is not in the common subset
    with caplog.at_level(logging.DEBUG, logger="agentnn"):
        ours = readers["app"].list_runs("fr-alpha", filter=clause, limit=None)
    assert summary(ours) == summary(readers["rest"].list_runs("fr-alpha", filter=clause,
                                                               limit=None))
    assert ours and "the agentnn app declined" in caplog.text


def test_experiments_best_runs_show_and_versions_equal_mlflows_rest_answers(readers, family):
    app, rest = readers["app"], readers["rest"]
    assert ([e.to_dict() for e in app.list_experiments(include_deleted=True)]
            == [e.to_dict() for e in rest.list_experiments(include_deleted=True)])
    for metric, mode in (("loss", "min"), ("loss", "max"), ("acc", "max"), ("never", "min")):
        ours, theirs = (reader.best_run("fr-alpha", metric, mode) for reader in (app, rest))
        assert summary([ours] if ours else []) == summary([theirs] if theirs else [])
    for run in rest.list_runs(limit=None, include_deleted=True):
        assert (json.dumps(app.get_run(run.run_id).to_dict(), sort_keys=True)
                == json.dumps(rest.get_run(run.run_id).to_dict(), sort_keys=True))
    detail = app.get_run(family["parent"])
    assert detail.artifacts == ["notes.txt", "sub/weights.bin"]
    assert len(detail.child_run_ids) == 3 and len(detail.logged_model_ids) == 1
    assert ([v.to_dict() for v in app.list_versions("fr-router")]
            == [v.to_dict() for v in rest.list_versions("fr-router")])
    assert [v.aliases for v in app.list_versions("fr-router")] == [["canary"], ["champion"], []]


def test_short_run_ids_resolve_through_the_app_as_through_mlflow(readers):
    from agentnn.errors import AmbiguousRunIdError

    app, rest = readers["app"], readers["rest"]
    for run in rest.list_runs(limit=6, include_deleted=True):
        assert app.resolve_run_id(run.run_id[:8]) == rest.resolve_run_id(run.run_id[:8])
        assert app.get_run(run.run_id[:8]).run.run_id == run.run_id
    for prefix in "0123456789abcdef":
        outcomes = []
        for reader in (app, rest):
            try:
                outcomes.append(reader.resolve_run_id(prefix))
            except (AmbiguousRunIdError, NotFoundError) as error:
                outcomes.append(str(error))
        assert outcomes[0] == outcomes[1]


def test_a_downsampled_history_is_the_one_the_sdk_makes_from_mlflows_points(readers, family):
    app, rest = readers["app"], readers["rest"]
    for max_points in (None, 100, 2000):
        ours = app.metric_history(family["long"], "curve", max_points=max_points)
        theirs = rest.metric_history(family["long"], "curve", max_points=max_points)
        assert ours == theirs
        assert len(ours) == (HISTORY_POINTS if max_points is None else min(len(ours), max_points))
    everything = rest.metric_history(family["long"], "curve")
    reduced = app.metric_history(family["long"], "curve", max_points=100)
    assert min(p.value for p in reduced) == min(p.value for p in everything)
    assert max(p.value for p in reduced) == max(p.value for p in everything)
    assert reduced[0] == everything[0] and reduced[-1] == everything[-1]


def test_unknown_things_are_not_found_as_through_mlflow(readers):
    for reader in (readers["app"], readers["rest"]):
        with pytest.raises(NotFoundError):
            reader.list_runs("fr-no-such-experiment")
        with pytest.raises(NotFoundError):
            reader.list_versions("fr-no-such-model")


def test_a_user_without_read_gets_403_and_does_not_see_the_experiment(family):
    app = ModelManager(family["rita"])
    rest = ModelManager(family["rita"], direct_reads=False)
    names = [e.name for e in app.list_experiments()]
    assert "fr-alpha" in names and "fr-hidden" not in names
    assert names == [e.name for e in rest.list_experiments()]
    for ask in (lambda m: m.list_runs("fr-hidden"), lambda m: m.best_run("fr-hidden", "loss"),
                lambda m: m.list_versions("fr-hidden-model")):
        for manager in (app, rest):
            with pytest.raises(PermissionDeniedError):
                ask(manager)
    hidden_run = ModelManager(family["alice"]).list_runs("fr-hidden")[0].run_id
    with pytest.raises(PermissionDeniedError):
        app.get_run(hidden_run)
    assert len(app.list_runs("fr-alpha", limit=None)) == len(rest.list_runs("fr-alpha",
                                                                             limit=None))


def test_a_wrong_password_is_refused_in_one_masked_line(agentnn_server, family):
    from agentnn.errors import AuthenticationError

    manager = ModelManager(agentnn_server.as_user(ts.ALICE, ts.WRONG_PASSWORD))
    with pytest.raises(AuthenticationError) as refused:
        manager.list_runs("fr-alpha")
    assert ts.WRONG_PASSWORD not in str(refused.value) and "\n" not in str(refused.value)


def test_reads_through_the_app_import_no_mlflow(family, workdir):
    probe = (
        "import sys\n"
        "from agentnn.sdk.nn_models import ModelManager\n"
        f"mm = ModelManager({family['alice']!r})\n"
        "assert mm.best_run('fr-alpha', 'loss') is not None\n"
        "assert mm.list_runs('fr-alpha', limit=None)\n"
        "assert mm.list_versions('fr-router')\n"
        "print('mlflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_a_stock_server_is_read_through_mlflows_rest_api(auth_server, workdir):
    alice = auth_server.as_user(ts.ALICE, ts.ALICE_PASSWORD)
    manager = ModelManager(alice)
    assert manager._server.served() == frozenset()
    assert isinstance(manager.list_experiments(), list)


def test_a_silent_server_fails_in_seconds_with_one_line(team, workdir):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        result = team.run("model", "experiments", env={"MLFLOW_TRACKING_URI": url},
                          timeout=60)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "does not answer" in lines[0], result.stderr
    assert _server_reader.ANSWER_TIMEOUT < 5


def test_the_model_commands_print_through_the_app_what_mlflows_rest_api_gives(
    team, family, readers
):
    env = team.credentials("env", family["alice"].replace(f"{ts.ALICE}:{ts.ALICE_PASSWORD}@", ""),
                           ts.ALICE, ts.ALICE_PASSWORD)
    rest = readers["rest"]

    def printed(*args: str) -> object:
        result = team.run("model", *args, "--output", "json", env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def nan_as_text(data: object) -> object:  # the commands print NaN as "nan"
        if isinstance(data, float) and math.isnan(data):
            return "nan"
        if isinstance(data, dict):
            return {key: nan_as_text(value) for key, value in data.items()}
        return [nan_as_text(item) for item in data] if isinstance(data, list) else data

    assert printed("runs", "fr-beta", "--limit", "0") == nan_as_text(
        [run.to_dict() for run in rest.list_runs("fr-beta", limit=None)])
    assert printed("best", "fr-alpha", "--metric", "acc", "--max")[0]["run_id"] == rest.best_run(
        "fr-alpha", "acc", "max").run_id
    assert printed("show", family["parent"])["artifacts"] == ["notes.txt", "sub/weights.bin"]
    assert [v["version"] for v in printed("versions", "fr-router")] == [3, 2, 1]
    names = {e["name"]: e["run_count"] for e in printed("experiments")}
    assert names["fr-beta"] == len(rest.list_runs("fr-beta", limit=None))
    result = team.run("model", "plot", family["long"], "--metric", "curve", "--out", "c.png",
                      env=env)
    assert result.returncode == 0, result.stderr
    assert (team.workdir / "c.png").read_bytes()[:4] == b"\x89PNG"
