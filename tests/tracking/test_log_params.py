"""log_params: nested configs flatten, params never silently change, long values are truncated."""

from __future__ import annotations

import pytest

from agentnn.errors import ParamChangedError
from agentnn.mlflow_integration.run.validation import MAX_PARAM_VALUE_LENGTH


def test_nested_params_are_flattened_with_dots(tracker, client):
    with tracker.start_run(params={"lr": 1e-3}) as run:
        run.log_params({"optimizer": {"name": "adamw", "betas": [0.9, 0.99]}, "epochs": 3})
    params = client.get_run(run.run_id).data.params
    assert params == {"lr": "0.001", "optimizer.name": "adamw",
                      "optimizer.betas": "[0.9, 0.99]", "epochs": "3"}


def test_logging_the_same_value_again_is_fine(tracker, client):
    with tracker.start_run(params={"lr": 0.1}) as run:
        run.log_params({"lr": 0.1})
    assert client.get_run(run.run_id).data.params == {"lr": "0.1"}


def test_changing_a_param_names_the_key_and_both_values(tracker, client):
    with tracker.start_run() as run:
        run.log_params({"lr": 0.1, "batch": 32})
        with pytest.raises(ValueError, match=r"'lr'.*'0\.1'.*'0\.2'") as caught:
            run.log_params({"lr": 0.2})
        assert isinstance(caught.value, ParamChangedError)
        run.log_params({"epochs": 5})
    assert client.get_run(run.run_id).data.params == {"lr": "0.1", "batch": "32", "epochs": "5"}


def test_overlong_value_is_truncated_with_a_warning(tracker, client):
    with tracker.start_run() as run:
        with pytest.warns(UserWarning, match="truncated"):
            run.log_params({"prompt": "x" * 10_000})
    stored = client.get_run(run.run_id).data.params["prompt"]
    assert len(stored) == MAX_PARAM_VALUE_LENGTH and stored.startswith("xxxx")


def test_resumed_run_keeps_its_params_immutable(tracker, client):
    with tracker.start_run(params={"lr": 0.1}) as run:
        run.log_metric("loss", 1.0, step=0)
    with tracker.start_run(run_id=run.run_id) as resumed:
        with pytest.raises(ParamChangedError):
            resumed.log_params({"lr": 0.5})
        resumed.log_metric("loss", 0.5, step=1)
    history = sorted((p.step, p.value) for p in client.get_metric_history(run.run_id, "loss"))
    assert history == [(0, 1.0), (1, 0.5)]
    assert client.get_run(run.run_id).info.status == "FINISHED"
