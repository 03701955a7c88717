"""The quickstart: a routing model trained, registered and promoted on the resolved store.

    agentnn quickstart            # in any folder: the runs land in ./mlruns (SQLite)
    mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db

It synthesises an interaction log of four agents, trains the advanced trainer's routing
classifier on it (experiment ``advanced_training``: params, per-step and per-epoch metrics,
the best model in the safe format), registers the model as ``agent-router`` and moves the
alias ``champion`` to the new version, so ``agent-router@champion`` always loads the latest
quickstart model.
"""

from __future__ import annotations

from typing import Any

from agentnn import config

REGISTERED_MODEL = "agent-router"
CHAMPION_ALIAS = "champion"
N_RECORDS = 2000  # synthetic interactions; enough for routing accuracy well above 0.8
N_AGENTS = 4
HEADLINE_METRIC = "val_acc"
LEARNING_RATE = 1e-2  # higher than the trainer's default: the quickstart runs only a few epochs


def run_quickstart(epochs: int = 5, seed: int = 0) -> dict[str, Any]:
    """Train, register and promote; returns the run id, best val accuracy and the version."""
    import mlflow

    from agentnn.data import build_interaction_dataset, synthesize_interactions
    from agentnn.nn_models import advanced_training

    settings = config.resolve()
    records = synthesize_interactions(N_RECORDS, N_AGENTS, seed=seed)
    data = build_interaction_dataset(records, seed=seed, source="synthetic")
    train_config = advanced_training.AdvancedTrainingConfig(
        mode="classifier", epochs=epochs, seed=seed, learning_rate=LEARNING_RATE
    )

    def report(epoch: int, metrics: dict[str, float]) -> None:
        print(f"epoch {epoch}/{epochs}  val_loss {metrics['val_loss']:.4f}  "
              f"{HEADLINE_METRIC} {metrics[HEADLINE_METRIC]:.3f}")

    result = advanced_training.train(train_config, data, register_as=REGISTERED_MODEL,
                                     on_epoch=report)
    client = mlflow.MlflowClient(tracking_uri=settings.tracking_uri.value)
    client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION_ALIAS, result.registered_version)
    best = result.best_metrics.get(HEADLINE_METRIC, float("nan"))
    print(f"run id:        {result.run_id}")
    print(f"experiment:    {advanced_training.EXPERIMENT} ({result.experiment_id})")
    print(f"best {HEADLINE_METRIC}:  {best:.3f} (epoch {result.best_epoch})")
    print(f"registered:    {REGISTERED_MODEL} version {result.registered_version}, "
          f"alias @{CHAMPION_ALIAS} -> {result.registered_version}")
    print(f"open the UI:   mlflow ui --backend-store-uri {settings.tracking_uri.value}")
    return {"run_id": result.run_id, "best_val_accuracy": best,
            "registered_version": result.registered_version}
