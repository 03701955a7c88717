"""Secrets never appear in what agentnn shows: settings, URI checks, probes, translated errors."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentnn import config
from agentnn.errors import AgentNNError, TrackingURIError
from agentnn.masking import mask_text, mask_uri
from agentnn.mlflow_integration.store.client import Store

# Anything a password may hold in a URI except blanks, quotes and angle brackets, which end a
# URI inside a message anyway; '@', '/', ':', '#' and '?' included on purpose.
PASSWORD_CHARS = string.ascii_letters + string.digits + "@/:#?!$%&*+=~._-"
passwords = st.text(PASSWORD_CHARS, min_size=4, max_size=24).filter(
    lambda text: any(char.isalnum() for char in text)
)
schemes = st.sampled_from(
    ["http", "https", "postgresql", "postgres", "mysql+pymysql", "redis", "mssql+pyodbc", "x-y"]
)
users = st.text(string.ascii_lowercase + string.digits + "._-", min_size=1, max_size=10)


@settings(max_examples=300, deadline=None)
@given(scheme=schemes, user=users, password=passwords)
def test_a_password_in_any_scheme_is_masked(scheme, user, password):
    uri = f"{scheme}://{user}:{password}@db.example.org:5432/mlflow"
    masked = mask_uri(uri)
    assert masked == f"{scheme}://{user}:***@db.example.org:5432/mlflow"
    message = f"API request to {uri}/api/2.0/x failed with exception Max retries exceeded"
    assert mask_text(message) == (f"API request to {scheme}://{user}:***@db.example.org:5432"
                                   "/mlflow/api/2.0/x failed with exception Max retries exceeded")


@pytest.mark.parametrize("query", [
    "?token=abc123secret", "?x=1&password=abc123secret", "?api_key=abc123secret",
    "?X-Amz-Signature=abc123secret&X-Amz-Credential=abc123secret", "?access_token=abc123secret",
])
def test_secret_query_values_are_masked(query):
    masked = mask_uri(f"https://mlflow.example.org/api{query}")
    assert "abc123secret" not in masked and "***" in masked


def test_a_uri_without_secrets_is_unchanged():
    for uri in ("sqlite:////tmp/x/mlflow.db", "http://127.0.0.1:5000", "postgresql://u@db/m"):
        assert mask_uri(uri) == uri


@pytest.mark.parametrize("scheme", ["postgres", "redis", "mongodb"])
def test_an_unknown_scheme_is_refused_with_its_password_masked(scheme):
    uri = f"{scheme}://alice:s3cr3t-P4ss@db:1/x"
    with pytest.raises(TrackingURIError) as caught:
        config.check_tracking_uri(config.Setting(uri, "env"))
    assert "s3cr3t-P4ss" not in str(caught.value)
    assert "alice:***@db" in str(caught.value) and "unknown scheme" in str(caught.value)
    assert "s3cr3t-P4ss" not in caught.value.uri


def test_settings_never_show_credentials(workdir, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "env-s3cr3t")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    (workdir / ".env").write_text("MLFLOW_TRACKING_TOKEN=dotenv-t0ken\n")
    resolved = config.resolve("http://bob:uri-s3cr3t@host:5000")
    shown = repr(resolved) + str(resolved.as_rows())
    for secret in ("env-s3cr3t", "dotenv-t0ken", "uri-s3cr3t"):
        assert secret not in shown
    assert ("username", "alice", "env") in resolved.as_rows()
    assert ("token", "***", ".env") in resolved.as_rows()


def test_any_agentnn_error_masks_a_uri_in_its_text():
    assert "pw1234" not in str(AgentNNError("cannot reach postgresql://u:pw1234@db/x"))


def test_a_translated_error_masks_the_raw_password_it_quotes(workdir, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "raw-pa55word")
    store = Store.resolve("http://alice:uri-pa55word@127.0.0.1:9")
    error = ConnectionError("login raw-pa55word / uri-pa55word refused for "
                            "http://alice:uri-pa55word@127.0.0.1:9/api")
    text = str(store.translate(error))
    assert "raw-pa55word" not in text and "uri-pa55word" not in text
    assert "alice:***@127.0.0.1:9" in text


def test_a_probe_of_a_dead_server_masks_the_password(workdir, closed_port):
    store = Store.resolve(f"http://alice:s3cr3t-P4ss@127.0.0.1:{closed_port}")
    health = store.probe()
    assert not health.reachable
    assert "s3cr3t-P4ss" not in str(health.to_dict()) + str(health.problem)
