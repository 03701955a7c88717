"""The quickstart: a small routing model trained and tracked end to end on the resolved store.

    agentnn quickstart            # in any folder: the runs land in ./mlruns (SQLite)
    mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db

It makes a synthetic data set (task features whose best agent is learnable), trains a small MLP
with the tracker, logs params, per-step and per-epoch metrics, and prints where to look.
"""

from __future__ import annotations

import time

from agentnn import config

EXPERIMENT = "quickstart"
AGENTS = ("finance", "tech", "marketing", "legal")
N_RECORDS = 2000
N_FEATURES = 32
HIDDEN = 64
BATCH_SIZE = 64
LEARNING_RATE = 3e-3


def run_quickstart(epochs: int = 5, seed: int = 0) -> dict[str, object]:
    """Train and track; returns the run id and the best validation accuracy."""
    import torch
    from torch import nn

    from agentnn.mlflow_integration import ExperimentTracker

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    centers = torch.randn(len(AGENTS), N_FEATURES, generator=generator) * 2
    labels = torch.randint(len(AGENTS), (N_RECORDS,), generator=generator)
    features = centers[labels] + torch.randn(N_RECORDS, N_FEATURES, generator=generator)
    split = int(0.8 * N_RECORDS)
    model = nn.Sequential(nn.Linear(N_FEATURES, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, len(AGENTS)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.CrossEntropyLoss()

    tracker = ExperimentTracker(EXPERIMENT)
    params = {
        "data": {"records": N_RECORDS, "features": N_FEATURES, "agents": len(AGENTS),
                 "seed": seed},
        "model": {"hidden": HIDDEN},
        "optimizer": {"name": "adamw", "lr": LEARNING_RATE},
        "batch_size": BATCH_SIZE,
        "epochs": epochs,
    }
    best_accuracy, step = 0.0, 0
    with tracker.start_run(params=params, tags={"job": "quickstart"}) as run:
        for epoch in range(epochs):
            started = time.perf_counter()
            model.train()
            order = torch.randperm(split, generator=generator)
            for start in range(0, split, BATCH_SIZE):
                batch = order[start:start + BATCH_SIZE]
                loss = loss_fn(model(features[batch]), labels[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                run.log_metrics({"train_loss": loss.item()}, step=step)
                step += 1
            model.eval()
            with torch.no_grad():
                logits = model(features[split:])
                val_loss = loss_fn(logits, labels[split:]).item()
                accuracy = (logits.argmax(1) == labels[split:]).float().mean().item()
            best_accuracy = max(best_accuracy, accuracy)
            run.log_metrics(
                {"val_loss": val_loss, "val_accuracy": accuracy,
                 "epoch_time": time.perf_counter() - started},
                step=epoch,
            )
            print(f"epoch {epoch + 1}/{epochs}  val_loss {val_loss:.4f}  val_accuracy {accuracy:.3f}")
    settings = config.resolve()
    print(f"run id:        {run.run_id}")
    print(f"experiment:    {EXPERIMENT} ({tracker.experiment_id})")
    print(f"best val_accuracy: {best_accuracy:.3f}")
    print(f"open the UI:   mlflow ui --backend-store-uri {settings.tracking_uri.value}")
    return {"run_id": run.run_id, "best_val_accuracy": best_accuracy}
