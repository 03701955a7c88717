"""What a training run hands back, and the model it logs: ``TrainResult``, ``log_best_model``,
the routers' plain MLP, copies of weights, the tracker a trainer opens by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentnn.nn_models.training.configs import JSONValue

if TYPE_CHECKING:
    import numpy as np
    import torch

    from agentnn.mlflow_integration import ExperimentTracker

MODEL_PIP_REQUIREMENTS = ("torch", "safetensors", "numpy")  # never inferred: inference takes ~11 s


# --- results and models ------------------------------------------------------------------------


@dataclass
class TrainResult:
    """What ``train()`` returns: where the run is and what it achieved."""

    run_id: str
    best_metrics: dict[str, float]
    """The epoch metrics at the best epoch (lowest ``val_loss``)."""
    model_uri: str | None
    """``models:/<model id>`` of the logged best model."""
    registered_version: str | None = None
    """The registry version when ``register_as`` was given."""
    epochs_run: int = 0
    """Epochs completed in the run, including those before a resume."""
    experiment_id: str = ""
    best_epoch: int = 0
    checkpoint_dir: str | None = None
    """Pass this as ``resume_from`` to continue the run."""
    stopped_early: bool = False
    study: str | None = None
    """The Optuna study of an architecture search."""


def log_best_model(
    module: torch.nn.Module,
    *,
    builder: str,
    config: Mapping[str, JSONValue],
    input_example: np.ndarray | None,
    register_as: str | None = None,
    metadata: Mapping[str, JSONValue] | None = None,
) -> tuple[str | None, str | None]:
    """Log ``module`` in the safe model format into the active run; (model_uri, version).

    The model format module rebuilds the network with ``builder(config)`` from the logged
    JSON, so ``config`` must hold everything the architecture needs.
    """
    from agentnn.mlflow_integration.models.format import log_torch_model

    module.eval()
    logged = log_torch_model(
        module,
        builder=builder,
        config=config,
        name="model",
        input_example=input_example,
        register_as=register_as,
        metadata=metadata,
    )
    version = getattr(logged, "registered_version", None)
    return logged.model_uri, (str(version) if version is not None else None)


def copy_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of a module's weights (to keep the best epoch's model)."""
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


ROUTING_DATA_PARAM = "data.agents"  # logged by interaction data sets: their labels are agents


def experiment_for(experiment: str, data_params: Mapping[str, object]) -> str:
    """The trainer's experiment for this data set: its own for interaction data (routers),
    ``<experiment>_<data set>`` for any other (``advanced_training_digits``).

    ``agentnn model best advanced_training`` is how a router is found for registration as
    ``agent-router``; a digits classifier in the same experiment could win it.
    """
    from agentnn.mlflow_integration.run.datasets import SOURCE_PARAM, dataset_name

    if ROUTING_DATA_PARAM in data_params or SOURCE_PARAM not in data_params:
        return experiment
    return f"{experiment}_{dataset_name(str(data_params[SOURCE_PARAM]))}"


def open_tracker(tracker: ExperimentTracker | None, experiment: str) -> ExperimentTracker:
    """The given tracker, or a new one on the trainer's own experiment."""
    if tracker is not None:
        return tracker
    from agentnn.mlflow_integration import ExperimentTracker

    return ExperimentTracker(experiment)
