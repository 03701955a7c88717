"""Store.translate / Store.errors: every MLflow error on a store becomes one agentnn error line."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException, RestException
from store_helpers import PASSWORD, error_lines, run_cli

from agentnn.errors import (
    AuthenticationError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    StoreUnreachableError,
    TrackingURIError,
)
from agentnn.mlflow_integration.store.client import Store


@pytest.fixture
def server_store(workdir, mlflow_server):
    return Store.resolve(mlflow_server.replace("http://", f"http://alice:{PASSWORD}@"))


def test_an_unknown_run_on_a_server_is_not_found(server_store):
    with pytest.raises(NotFoundError, match="run '0123456789abcdef0123456789abcdef' not found"):
        with server_store.errors(kind="run", name="0123456789abcdef0123456789abcdef"):
            server_store.client().get_run("0123456789abcdef0123456789abcdef")


def test_a_malformed_run_id_on_a_server_is_one_line(server_store):
    with pytest.raises((NotFoundError, InvalidArgumentError)) as caught:
        with server_store.errors(kind="run", name="bad id!"):
            server_store.client().get_run("bad id!")
    assert "bad id!" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("command", [
    ["model", "show", "bad id!"],
    ["model", "compare", "bad id!", "0123456789abcdef0123456789abcdef"],
    ["model", "plot", "bad id!", "--metric", "loss", "--out", "plot.png"],
])
def test_read_commands_with_a_malformed_run_id_on_a_server_print_one_line(
    workdir, mlflow_server, command
):
    uri = mlflow_server.replace("http://", f"http://alice:{PASSWORD}@")
    result = run_cli([*command, "--tracking-uri", uri], workdir)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert len(error_lines(result)) == 1 and "bad id!" in error_lines(result)[0]
    assert PASSWORD not in result.stdout + result.stderr


@pytest.mark.parametrize(("status", "expected", "words"), [
    (401, AuthenticationError, "authentication failed"),
    (403, PermissionDeniedError, "permission denied"),
    (500, TrackingURIError, "internal error"),
    (503, StoreUnreachableError, "not serving"),
])
def test_http_statuses_become_agentnn_errors(workdir, status, expected, words):
    store = Store.resolve(f"http://alice:{PASSWORD}@127.0.0.1:9")
    code = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 500: "INTERNAL_ERROR",
            503: "TEMPORARILY_UNAVAILABLE"}[status]
    error = RestException({"error_code": code, "message": f"http://alice:{PASSWORD}@x failed"})
    translated = store.translate(error)
    assert type(translated) is expected
    assert words in str(translated) and PASSWORD not in str(translated)
    assert "alice:***@127.0.0.1:9" in str(translated)


def test_a_dead_server_seen_by_mlflow_is_unreachable(workdir, closed_port):
    store = Store.resolve(f"http://alice:{PASSWORD}@127.0.0.1:{closed_port}")
    store.configure_mlflow()  # bounded retries: this takes seconds, not minutes
    from mlflow import MlflowClient

    with pytest.raises(StoreUnreachableError, match="connection refused") as caught:
        with store.errors():
            MlflowClient(store.uri).search_experiments()
    assert PASSWORD not in str(caught.value)


def test_other_errors_pass_through_untouched(workdir, store_uri):
    with pytest.raises(KeyError):
        with Store.resolve(store_uri).errors():
            raise KeyError("not a store problem")


def test_a_missing_database_driver_names_the_package(workdir):
    result = run_cli(["model", "runs", "--tracking-uri",
                      f"mysql+pymysql://root:{PASSWORD}@127.0.0.1:1/mlflow"], workdir)
    assert result.returncode == 1
    [line] = error_lines(result)
    assert "pip install PyMySQL" in line and PASSWORD not in result.stdout + result.stderr
    assert "root:***@127.0.0.1" in line


def test_a_missing_driver_inside_mlflow_is_translated(workdir):
    store = Store.resolve("mysql://root:pw123@127.0.0.1:1/mlflow")
    try:
        raise ModuleNotFoundError("No module named 'MySQLdb'", name="MySQLdb")
    except ModuleNotFoundError as missing:
        try:
            raise MlflowException("could not create engine") from missing
        except MlflowException as error:
            translated = store.translate(error)
    assert "pip install mysqlclient" in str(translated) and "pw123" not in str(translated)


@pytest.mark.parametrize("scheme", ["postgres", "redis"])
def test_an_unknown_scheme_in_the_cli_masks_its_password(workdir, scheme):
    result = run_cli(["model", "runs"], workdir,
                     MLFLOW_TRACKING_URI=f"{scheme}://alice:{PASSWORD}@db:1/x")
    assert result.returncode == 1
    [line] = error_lines(result)
    assert "unknown scheme" in line and PASSWORD not in result.stdout + result.stderr
