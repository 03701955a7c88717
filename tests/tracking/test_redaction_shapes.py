"""Secrets in every shape a config or command line carries them never reach the store."""

from __future__ import annotations

import string

import mlflow
from hypothesis import given
from hypothesis import strategies as st

from agentnn.mlflow_integration.run.context import command_line
from agentnn.mlflow_integration.run.redaction import REDACTED, is_secret_key, redact
from agentnn.mlflow_integration.run.validation import flatten, param_value

SECRET = "hunter2-Zq9"  # distinctive, so a leak is found by a plain substring search
SECRET_KEY_SPELLINGS = ["password", "passwords", "Password", "PASSWORD", "db_pass", "pwd",
                        "db-passwd", "dbPassword", "api_key", "apiKeys", "client_secret",
                        "secrets", "auth_token", "PGPASSWORD", "mysql_root_password"]
WORD = st.text(string.ascii_lowercase, min_size=1, max_size=6).filter(
    lambda w: not is_secret_key(w)
)
PLAIN = st.one_of(st.integers(), st.text(string.ascii_letters, max_size=6), st.booleans())


def _stored_values(config: dict) -> list[str]:
    """What the tracker would hand to MLflow for ``config``: flattened, stringified, redacted."""
    values = {key: param_value(key, value) for key, value in flatten(config).items()}
    return list(redact(values)[0].values())


@st.composite
def configs_hiding_a_secret(draw: st.DrawFn) -> dict:
    """A nested config of dicts and lists with one secret-named key somewhere inside."""
    holder = {draw(WORD): draw(PLAIN), draw(st.sampled_from(SECRET_KEY_SPELLINGS)): SECRET}
    node: object = holder
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            node = [draw(PLAIN), node] if draw(st.booleans()) else [node]
        else:
            node = {draw(WORD): node, draw(WORD): draw(PLAIN)}
    return {draw(WORD): node}


@given(config=configs_hiding_a_secret())
def test_a_secret_at_any_depth_of_dicts_and_lists_is_masked(config):
    assert not any(SECRET in value for value in _stored_values(config))


def test_a_list_of_service_dicts_keeps_its_password_out():
    config = {"services": [{"name": "db", "password": SECRET}], "lr": 0.1}
    masked, redacted = redact({k: param_value(k, v) for k, v in flatten(config).items()})
    assert masked == {"services": REDACTED, "lr": "0.1"} and redacted == ["services"]


def test_connection_strings_are_masked():
    for value in (f"Server=x;User Id=sa;Password={SECRET};",
                  f"host=db user=bob password={SECRET} dbname=app",
                  f'{{"user": "bob", "pwd": "{SECRET}"}}'):
        assert redact({"conn": value}) == ({"conn": REDACTED}, ["conn"]), value


def test_plural_and_abbreviated_keys_are_masked():
    for key in ("passwords", "db_pass", "pwd", "DB_PASSWD", "PGPASSWORD", "secrets"):
        assert redact({key: SECRET}) == ({key: REDACTED}, [key]), key


def test_ordinary_values_with_colons_and_equals_stay_readable():
    kept = {"schedule": "warmup=100,decay=cosine", "uri": "http://host:5000",
            "layers": "[{'units': 64, 'act': 'relu'}]", "max_tokens": "512", "passes": "3"}
    assert redact(kept) == (kept, [])


def test_command_lines_hide_short_flag_and_assignment_passwords():
    line = command_line(["mysql", "-u", "root", "-p", SECRET, f"PGPASSWORD={SECRET}",
                         f"--db-password={SECRET}", "--lr", "0.1"])
    assert SECRET not in line
    assert "PGPASSWORD=***" in line and "--lr 0.1" in line and "-u root" in line


def test_a_run_stores_no_secret_from_nested_params(tracker):
    config = {"services": [{"name": "db", "password": SECRET}],
              "conn": f"Server=x;User Id=sa;Password={SECRET};", "db_pass": SECRET, "lr": 0.1}
    with tracker.start_run(params=config, tags={"passwords": SECRET}) as run:
        run.log_metrics({"loss": 1.0}, step=0)
    data = mlflow.MlflowClient(tracker.tracking_uri).get_run(run.run_id).data
    stored = " ".join([*data.params.values(), *data.tags.values(), *data.params, *data.tags])
    assert SECRET not in stored and data.params["lr"] == "0.1"


def test_the_journal_folder_and_files_are_private_to_their_owner(tracker, tmp_path):
    journal_dir = tracker.journal_dir
    journal_dir.mkdir(parents=True, exist_ok=True)
    journal_dir.chmod(0o755)  # a folder made before the rule, open to everyone
    with tracker.start_run(params={"db_pass": SECRET}) as run:
        run.log_metrics({"loss": 1.0}, step=0)
        journals = list(journal_dir.glob(f"{run.run_id}*.jsonl"))
        assert journals and all(path.stat().st_mode & 0o777 == 0o600 for path in journals)
    assert journal_dir.stat().st_mode & 0o777 == 0o700
