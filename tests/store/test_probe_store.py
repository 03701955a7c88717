"""Store.probe: one health probe, against a real `mlflow server` and real SQLite files."""

from __future__ import annotations

import mlflow

from agentnn.mlflow_integration.store.client import Store


def _with_userinfo(url: str, userinfo: str) -> str:
    return url.replace("http://", f"http://{userinfo}@", 1)


def test_a_server_answers_with_its_version_and_proxied_artifacts(workdir, mlflow_server):
    health = Store.resolve(mlflow_server).probe()
    assert health.reachable and health.kind == "http"
    assert health.server_version == mlflow.__version__
    assert health.backend == "SqlStore"
    assert health.auth_enabled is False
    assert health.artifacts_proxied is True
    assert health.problem is None


def test_user_and_password_in_the_uri_are_accepted(workdir, mlflow_server):
    store = Store.resolve(_with_userinfo(mlflow_server, "alice:s3cr3t-P4ss"))
    health = store.check()  # raises when the probe fails
    assert health.reachable and health.credentials_ok is True
    assert "s3cr3t-P4ss" not in str(health.to_dict())
    assert store.client().search_experiments()  # MLflow accepts the same URI


def test_credentials_from_the_environment_and_dotenv_are_sent(workdir, mlflow_server,
                                                              monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    (workdir / ".env").write_text("MLFLOW_TRACKING_PASSWORD=from-dotenv\n")
    health = Store.resolve(mlflow_server).probe()
    assert health.reachable and health.credentials_ok is True


def test_a_bearer_token_is_sent(workdir, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "t0ken-value")
    health = Store.resolve(mlflow_server).probe()
    assert health.reachable and health.credentials_ok is True


def test_a_closed_port_is_unreachable_and_named(workdir, closed_port):
    health = Store.resolve(f"http://127.0.0.1:{closed_port}").probe()
    assert not health.reachable
    assert "connection refused" in health.detail


def test_a_sqlite_store_reports_its_schema(workdir, store_uri):
    health = Store.resolve(store_uri).probe()
    assert health.reachable and health.kind == "sqlite" and "schema" in health.server_version


def test_a_missing_sqlite_file_is_not_reachable(workdir):
    health = Store.resolve(f"sqlite:///{workdir / 'absent.db'}").probe()
    assert not health.reachable and "no MLflow store" in health.detail
    assert not (workdir / "absent.db").exists()
