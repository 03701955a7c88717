"""`loop.run_epoch`: the epoch's train metrics are those of the model over the whole split."""

from __future__ import annotations

import pytest
import torch

from agentnn.nn_models.training import loop
from agentnn.nn_models.training.epochs import EarlyStopping
from agentnn.nn_models.training.mlp import mlp


def _frozen_state() -> loop.TrainState:
    """A model whose optimiser does not move it (lr 0), so the epoch's metrics describe it."""
    torch.manual_seed(0)
    model = mlp(8, [16], 3, activation="relu", dropout=0.0)
    return loop.TrainState(
        model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.0), scheduler=None,
        stopper=EarlyStopping(patience=0), scaler=torch.amp.GradScaler("cpu", enabled=False),
    )


def test_train_accuracy_and_loss_are_those_of_the_whole_split():
    generator = torch.Generator().manual_seed(1)
    split = {"x": torch.randn(300, 8, generator=generator),
             "y": torch.randint(0, 3, (300,), generator=generator)}
    state = _frozen_state()

    sums = loop.run_epoch(state, loop.classification_loss, split, loop.EpochPlan(batch_size=32),
                          order=torch.randperm(300, generator=generator), amp=False)

    metrics = sums.means()
    with torch.no_grad():
        logits = state.model(split["x"])
    expected_acc = int((logits.argmax(dim=1) == split["y"]).sum()) / 300
    expected_loss = float(torch.nn.functional.cross_entropy(logits, split["y"]))
    assert metrics["train_acc"] == pytest.approx(expected_acc, abs=1e-9)
    assert metrics["train_loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert 0.2 < expected_acc < 0.6  # an untrained model on random labels: the check has teeth
