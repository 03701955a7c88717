"""best_run: the finished run with the best value; unfinished runs and missing metrics ignored."""

from __future__ import annotations

import pytest


def _run(tracker, value, status_error=False, metric="val_loss"):
    try:
        with tracker.start_run() as run:
            if value is not None:
                run.log_metric(metric, value)
            if status_error:
                raise RuntimeError("boom")
    except RuntimeError:
        pass
    return run.run_id


def test_min_and_max_pick_the_right_finished_run(tracker):
    ids = {value: _run(tracker, value) for value in (0.5, 0.2, 0.9)}
    _run(tracker, 0.01, status_error=True)  # better, but FAILED: not a candidate
    _run(tracker, None)  # finished without the metric
    best = tracker.best_run("val_loss", mode="min")
    assert best.run_id == ids[0.2] and best.metrics["val_loss"] == 0.2
    assert best.status == "FINISHED" and best.start_time is not None
    assert tracker.best_run("val_loss", mode="max").run_id == ids[0.9]


def test_nan_never_wins(tracker):
    _run(tracker, float("nan"))
    good = _run(tracker, 0.7)
    assert tracker.best_run("val_loss", mode="min").run_id == good
    assert tracker.best_run("val_loss", mode="max").run_id == good


def test_no_candidate_gives_none(tracker):
    _run(tracker, None)
    assert tracker.best_run("val_loss") is None


def test_bad_mode_is_refused(tracker):
    with pytest.raises(ValueError, match="mode"):
        tracker.best_run("val_loss", mode="lowest")
