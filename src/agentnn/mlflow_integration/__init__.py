"""Tracking in MLflow: the tracker and its run handle, and one sub-package per concern behind it.

- ``experiment_tracking``: :class:`ExperimentTracker` and :class:`TrackedRun` (the verbs a
  trainer calls), :class:`RunSummary`;
- ``run``: input checks, secret redaction, automatic tags and run names, the best-run query;
- ``journal``: the per-run local file every record passes through;
- ``writer``: what moves journals into the store (a thread of the training process, or a
  process of its own), with the native bulk path for SQL stores;
- ``store``: settings turned into one MLflow client, its probe and error translation, the
  embedded SQLite store;
- ``offline``: the fallback to the embedded store at run start, and pushing runs between stores;
- ``models``: the safe model format, the builder registry and the one loader.

Imports, one way inside: ``experiment_tracking`` -> ``writer`` -> ``offline`` | ``models`` ->
``store`` | ``journal`` | ``run``; out of the package only :mod:`agentnn.config`,
:mod:`agentnn.errors`, :mod:`agentnn.masking` and :mod:`agentnn.heap`; never the trainers, the
SDK or the CLI (the model builder registry names trainer modules, imported by name only when a
model file asks for one). The names below load on first use, so importing this package does not
import MLflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentnn.mlflow_integration.experiment_tracking import (
        ExperimentTracker,
        RunSummary,
        TrackedRun,
    )

__all__ = ["ExperimentTracker", "RunSummary", "TrackedRun"]


def __getattr__(name: str) -> object:
    # Deferred so that `import agentnn.mlflow_integration` does not pull in MLflow.
    if name in __all__:
        from agentnn.mlflow_integration import experiment_tracking

        return getattr(experiment_tracking, name)
    raise AttributeError(name)
