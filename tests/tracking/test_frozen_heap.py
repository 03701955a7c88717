"""While a run is open, full garbage collections skip the process's long-lived objects; when the
last run ends the collector sees them all again, and nothing logged is lost on the way."""

from __future__ import annotations

import gc

import pytest


@pytest.fixture(autouse=True)
def thawed_heap():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_objects_alive_at_run_start_are_frozen_until_the_run_ends(tracker, client):
    assert gc.get_freeze_count() == 0
    with tracker.start_run() as run:
        assert gc.get_freeze_count() > 10_000  # MLflow's and torch's modules, at least
        for step in range(50):
            run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
    assert gc.get_freeze_count() == 0
    assert len(client.get_metric_history(run.run_id, "loss")) == 50


def test_the_heap_thaws_only_when_the_last_of_nested_runs_ends(tracker):
    with tracker.start_run() as parent:
        with tracker.start_run(nested=True):
            assert gc.get_freeze_count() > 0
        assert gc.get_freeze_count() > 0  # the parent is still open
        parent.log_metrics({"trials": 1.0})
    assert gc.get_freeze_count() == 0


def test_a_failing_run_thaws_the_heap_too(tracker, client):
    with pytest.raises(RuntimeError), tracker.start_run() as run:
        raise RuntimeError("diverged")
    assert gc.get_freeze_count() == 0
    assert client.get_run(run.run_id).info.status == "FAILED"
