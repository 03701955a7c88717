"""Tracking: :class:`ExperimentTracker`, its run handle, the journal and the writer process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentnn.mlflow_integration.experiment_tracking import (
        ExperimentTracker,
        RunSummary,
        TrackedRun,
    )

__all__ = ["ExperimentTracker", "RunSummary", "TrackedRun"]


def __getattr__(name: str) -> Any:
    # Deferred so that `import agentnn.mlflow_integration` does not pull in MLflow.
    if name in __all__:
        from agentnn.mlflow_integration import experiment_tracking

        return getattr(experiment_tracking, name)
    raise AttributeError(name)
