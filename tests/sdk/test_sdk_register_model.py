"""ModelManager.register_model: finds the run's model, new name or not, optional alias."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentnn.errors import NotFoundError, RunHasNoModelError
from agentnn.sdk.nn_models import ModelManager


def test_registering_twice_makes_versions_one_and_two_of_a_new_name(populated_copy):
    manager = ModelManager(populated_copy["uri"])
    first = manager.register_model(populated_copy["with_model"], "agent-router")
    second = manager.register_model(populated_copy["with_model"], "agent-router",
                                    alias="champion")
    assert (first.version, second.version) == (1, 2)
    assert first.run_id == populated_copy["with_model"]
    assert first.model_id and first.model_id.startswith("m-")
    assert Path(first.source, "MLmodel").is_file()  # the logged model's own folder
    assert second.aliases == ["champion"] and first.aliases == []
    assert second.run_metrics == {"val_loss": 0.42}


def test_a_run_with_only_an_mlmodel_artifact_folder_registers_from_it(populated_copy, workdir):
    import mlflow
    from mlflow.tracking import MlflowClient

    saved = workdir / "saved-model"
    mlflow.pyfunc.save_model(str(saved), python_model=_Identity(), pip_requirements=["mlflow"])
    client = MlflowClient(populated_copy["uri"])
    run = client.create_run(populated_copy["routing_experiment"])
    client.log_artifacts(run.info.run_id, str(saved), "model")
    client.set_terminated(run.info.run_id)

    version = ModelManager(populated_copy["uri"]).register_model(run.info.run_id, "from-files")
    assert version.version == 1
    assert version.model_id is None
    assert version.source.endswith("/model")
    assert Path(version.source, "MLmodel").is_file()


def test_a_run_without_a_model_says_so(populated_copy):
    with pytest.raises(RunHasNoModelError, match="logged no model"):
        ModelManager(populated_copy["uri"]).register_model(populated_copy["lr_0.01"], "router")


def test_an_unknown_run_is_a_not_found_error(populated_copy):
    with pytest.raises(NotFoundError, match="run 'feedfacefeedfacefeedfacefeedface' not found"):
        ModelManager(populated_copy["uri"]).register_model("feedfacefeedfacefeedfacefeedface",
                                                           "router")


def _identity_class():
    import mlflow.pyfunc

    class Identity(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    return Identity


class _Identity:
    """Built lazily so that collecting this file does not import MLflow."""

    def __new__(cls):
        return _identity_class()()
