"""Secrets never reach the store: secret-looking keys and values are stored as ***."""

from __future__ import annotations

import string

import mlflow
from hypothesis import given
from hypothesis import strategies as st

from agentnn.mlflow_integration.run.redaction import (
    REDACTED,
    REDACTED_KEYS_TAG,
    SECRET_WORDS,
    is_secret_key,
    redact,
)
from agentnn.mlflow_integration.run.validation import flatten

WORD = st.text(string.ascii_lowercase, min_size=1, max_size=8).filter(
    lambda w: not is_secret_key(w) and w not in ("api", "access", "private", "client", "key")
)
SEPARATOR = st.sampled_from(["_", ".", "-", "/"])
TOKEN_BODY = st.text(string.ascii_letters + string.digits, min_size=36, max_size=40)
SECRET_VALUES = st.one_of(
    TOKEN_BODY.map(lambda body: f"sk-{body}"),
    TOKEN_BODY.map(lambda body: f"ghp_{body}"),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=16, max_size=16).map(
        lambda body: f"AKIA{body}"),
    st.tuples(TOKEN_BODY, TOKEN_BODY, TOKEN_BODY).map(lambda p: f"eyJ{p[0]}.{p[1]}.{p[2]}"),
)


@given(prefix=WORD, secret=st.sampled_from(sorted(SECRET_WORDS)), separator=SEPARATOR,
       value=st.text(max_size=20))
def test_any_key_with_a_secret_word_is_masked(prefix, secret, separator, value):
    key = f"{prefix}{separator}{secret}"
    masked, redacted = redact({key: value or "x", "lr": "0.1"})
    assert masked == {key: REDACTED, "lr": "0.1"} and redacted == [key]


@given(prefix=WORD, value=SECRET_VALUES)
def test_secret_looking_values_are_masked_whatever_the_key(prefix, value):
    masked, redacted = redact({f"{prefix}.setting": f"use {value} here"})
    assert list(masked.values()) == [REDACTED] and redacted == [f"{prefix}.setting"]


@given(user=WORD, password=TOKEN_BODY, host=WORD)
def test_a_uri_keeps_its_host_and_database_and_loses_only_its_password(user, password, host):
    value = f"postgresql://{user}:{password}@{host}:5432/optuna"
    masked, redacted = redact({"storage": value})
    assert masked == {"storage": f"postgresql://{user}:***@{host}:5432/optuna"}
    assert redacted == ["storage"]


@given(words=st.lists(WORD, min_size=1, max_size=4), separator=SEPARATOR)
def test_ordinary_keys_and_values_are_kept(words, separator):
    key = separator.join(words)
    assert redact({key: "adamw"}) == ({key: "adamw"}, [])


def test_lookalike_keys_stay_readable():
    kept = {"max_tokens": "512", "author": "me", "tokenizer": "bpe", "keyword": "x"}
    assert redact(kept) == (kept, [])
    for key in ("apiKey", "api_key", "AWS_ACCESS_KEY", "db.password", "clientSecret",
                "private-key", "auth"):
        assert is_secret_key(key), key


NESTED = st.recursive(
    st.one_of(st.integers(), st.text(max_size=5), st.floats(allow_nan=False)),
    lambda children: st.dictionaries(WORD, children, min_size=1, max_size=3),
    max_leaves=12,
)


@given(config=st.dictionaries(WORD, NESTED, min_size=1, max_size=4))
def test_flattening_keeps_every_leaf_under_its_dotted_path(config):
    flat = flatten(config)

    def leaves(node, path):
        if isinstance(node, dict):
            for key, child in node.items():
                yield from leaves(child, f"{path}.{key}" if path else key)
        else:
            yield path, node

    assert flat == dict(leaves(config, ""))


def test_nested_secrets_are_redacted_after_flattening_and_listed_by_key(tracker, client):
    token = "sk-" + "a" * 40
    config = {"llm": {"api_key": "plain-looking", "model": "gpt", "headers": {"x": token}},
              "db": {"url": "postgresql://bob:hunter2@db:5432/app"}, "lr": 0.1}
    with tracker.start_run(params=config, tags={"auth_token": "abc"}) as run:
        run.set_tags({"note": f"token {token}"})
    data = mlflow.MlflowClient(tracker.tracking_uri).get_run(run.run_id).data
    assert data.params == {"llm.api_key": REDACTED, "llm.model": "gpt", "llm.headers.x": REDACTED,
                           "db.url": "postgresql://bob:***@db:5432/app", "lr": "0.1"}
    assert data.tags["auth_token"] == REDACTED and data.tags["note"] == REDACTED
    listed = set(data.tags[REDACTED_KEYS_TAG].split(","))
    assert {"llm.api_key", "llm.headers.x", "db.url", "note"} <= listed
    stored = " ".join([*data.params.values(), *data.tags.values()])
    assert "hunter2" not in stored and token not in stored and "plain-looking" not in stored
