"""Reads never create a store: a sqlite:/// path with none is refused; writes still create it."""

from __future__ import annotations

import shutil

import pytest
from store_helpers import error_lines, run_cli

from agentnn.errors import TrackingURIError
from agentnn.mlflow_integration import ExperimentTracker
from agentnn.sdk.nn_models import ModelManager


@pytest.mark.parametrize("command", [
    ["model", "experiments"], ["model", "runs"], ["model", "show", "0" * 32],
    ["model", "versions", "router"], ["model", "load", "router@champion"],
])
def test_read_commands_refuse_a_path_with_no_store(workdir, command):
    uri = f"sqlite:///{workdir / 'typo.db'}"
    result = run_cli([*command, "--tracking-uri", uri], workdir)
    assert result.returncode == 1
    [line] = error_lines(result)
    assert f"no MLflow store at {workdir / 'typo.db'}" in line
    assert not (workdir / "typo.db").exists()


def test_the_refusal_suggests_a_store_nearby(workdir, template_store):
    shutil.copyfile(template_store, workdir / "mlflow.db")
    result = run_cli(["model", "runs", "--tracking-uri", f"sqlite:///{workdir / 'mlflw.db'}"],
                     workdir)
    assert result.returncode == 1
    [line] = error_lines(result)
    assert f"did you mean sqlite:///{workdir / 'mlflow.db'}?" in line


def test_the_embedded_default_is_refused_by_reads_before_the_first_run(workdir):
    result = run_cli(["model", "experiments"], workdir)
    assert result.returncode == 1 and "no MLflow store at" in error_lines(result)[0]
    assert not (workdir / "mlruns" / "mlflow.db").exists()


def test_a_writer_still_creates_the_embedded_default(workdir):
    tracker = ExperimentTracker("created")
    assert (workdir / "mlruns" / "mlflow.db").is_file()
    assert [e.name for e in ModelManager().list_experiments()].count("created") == 1
    assert tracker.store.is_embedded


@pytest.mark.parametrize("uri", ["sqlite://", "sqlite:///:memory:", "sqlite:///"])
def test_an_in_memory_store_is_refused_everywhere(workdir, uri):
    with pytest.raises(TrackingURIError, match="in-memory SQLite store would lose every run"):
        ExperimentTracker("x", uri)
    with pytest.raises(TrackingURIError, match="in-memory"):
        ModelManager(uri).list_experiments()
    result = run_cli(["model", "runs", "--tracking-uri", uri], workdir)
    assert result.returncode == 1 and len(error_lines(result)) == 1
