"""The quickstart: a routing model trained, registered and promoted on the resolved store.

    agentnn quickstart            # in any folder: the runs land in ./mlruns (SQLite)
    mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db

It synthesises an interaction log of four agents, trains the advanced trainer's routing
classifier on it (experiment ``advanced_training``: params, per-step and per-epoch metrics,
the best model in the safe format) and registers the model as a new version of
``agent-router``. The alias ``champion`` moves to the new version only when it is better than
the champion by :data:`CHAMPION_METRIC` (or there is none yet): running the quickstart again
never demotes a better model that ``agent-router@champion`` serves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

REGISTERED_MODEL = "agent-router"
CHAMPION_ALIAS = "champion"
N_RECORDS = 2000  # synthetic interactions; enough for routing accuracy well above 0.8
N_AGENTS = 4
HEADLINE_METRIC = "val_acc"
# The champion is challenged on the held-out accuracy of the registered model itself (the best
# epoch's, on the test split); a tie keeps the champion.
CHAMPION_METRIC = "test_acc"
LEARNING_RATE = 1e-2  # higher than the trainer's default: the quickstart runs only a few epochs


def run_quickstart(
    epochs: int = 5, seed: int = 0, on_epoch: Callable[[int, dict[str, float]], None] | None = None
) -> dict[str, Any]:
    """Train, register and promote; returns what happened as plain data.

    ``on_epoch(epoch, metrics)`` hears about every epoch (``agentnn quickstart`` prints it).
    The result holds ``run_id``, ``experiment``, ``experiment_id``, ``best_val_accuracy``,
    ``best_epoch``, ``registered_model``, ``registered_version``, ``alias``,
    ``champion_version`` (where the alias points now), ``promoted`` (whether it moved to the
    new version) and ``tracking_uri``.
    """
    from agentnn.data import build_interaction_dataset, synthesize_interactions
    from agentnn.mlflow_integration import ExperimentTracker
    from agentnn.nn_models import advanced_training
    from agentnn.sdk.nn_models import ModelManager

    records = synthesize_interactions(N_RECORDS, N_AGENTS, seed=seed)
    data = build_interaction_dataset(records, seed=seed, source="synthetic")
    train_config = advanced_training.AdvancedTrainingConfig(
        mode="classifier", epochs=epochs, seed=seed, learning_rate=LEARNING_RATE
    )

    # The store the run really went to: the resolved one, or ./mlruns when a server that does
    # not answer made the run fall back (the alias belongs beside the version it names).
    tracker = ExperimentTracker(advanced_training.EXPERIMENT)
    result = advanced_training.train(train_config, data, tracker=tracker,
                                     register_as=REGISTERED_MODEL, on_epoch=on_epoch)
    assert result.registered_version is not None  # train() registered it (register_as)
    manager = ModelManager(tracker.tracking_uri)
    try:
        champion = next((version for version in manager.list_versions(REGISTERED_MODEL)
                         if CHAMPION_ALIAS in version.aliases), None)
        promoted = champion is None or _better(result.best_metrics.get(CHAMPION_METRIC),
                                               champion.run_metrics.get(CHAMPION_METRIC))
        if promoted:
            manager.set_alias(REGISTERED_MODEL, CHAMPION_ALIAS, result.registered_version)
    finally:
        manager.close()
    return {
        "run_id": result.run_id,
        "experiment": advanced_training.EXPERIMENT,
        "experiment_id": result.experiment_id,
        "best_val_accuracy": result.best_metrics.get(HEADLINE_METRIC, float("nan")),
        "best_epoch": result.best_epoch,
        "registered_model": REGISTERED_MODEL,
        "registered_version": result.registered_version,
        "alias": CHAMPION_ALIAS,
        "champion_version": (result.registered_version if promoted or champion is None
                             else str(champion.version)),
        "promoted": promoted,
        "tracking_uri": tracker.tracking_uri,
    }


def _better(new: float | None, champion: float | None) -> bool:
    """Whether the new model beats the champion; a champion that never logged the metric
    (made by hand, or before it was logged) gives way, a new model without it does not."""
    if new is None or new != new:  # missing or NaN
        return False
    return champion is None or champion != champion or new > champion
