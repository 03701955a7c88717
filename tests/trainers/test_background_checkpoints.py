"""Checkpoints written in the background hold the state of their epoch, land in order and
report a failed write; the trainers' checkpoints are on disk when training returns."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agentnn.nn_models.training import loop
from agentnn.nn_models.training.checkpoints import (
    CheckpointManager,
    list_checkpoints,
    load_checkpoint,
)
from agentnn.nn_models.training.epochs import EarlyStopping
from agentnn.nn_models.training.mlp import mlp


def _trained_state() -> loop.TrainState:
    """A model and an AdamW optimiser that took one step, so both have state to save."""
    torch.manual_seed(0)
    model = mlp(8, [16], 3, activation="relu", dropout=0.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 8)).sum().backward()
    optimizer.step()
    return loop.TrainState(
        model=model, optimizer=optimizer, scheduler=None, stopper=EarlyStopping(patience=0),
        scaler=torch.amp.GradScaler("cpu", enabled=False), epoch=1, global_step=1,
        best_state={k: v.clone() for k, v in model.state_dict().items()},
    )


def _go_on_training(state: loop.TrainState) -> None:
    """What training does to the live tensors after a save: changes them in place."""
    with torch.no_grad():
        for parameter in state.model.parameters():
            parameter.add_(1.0)
    for values in state.optimizer.state.values():
        values["exp_avg"].add_(1.0)


def test_a_background_checkpoint_holds_the_state_of_its_epoch_not_later_changes(
    workdir: Path,
):
    state = _trained_state()
    weights = {k: v.clone() for k, v in state.model.state_dict().items()}
    moments = [values["exp_avg"].clone() for values in state.optimizer.state.values()]

    with CheckpointManager(workdir / "ckpt") as saver:
        loop.save_state(saver, state, {"seed": 0}, "run-1", {"n": 8}, background=True)
        _go_on_training(state)

    saved = load_checkpoint(workdir / "ckpt")
    assert saved.epoch == 1
    for key, value in weights.items():
        assert torch.equal(saved.model_state[key], value), key
    saved_moments = [values["exp_avg"] for values in saved.optimizer_state["state"].values()]
    assert all(torch.equal(a, b) for a, b in zip(saved_moments, moments, strict=True))
    assert not torch.equal(state.model.state_dict()["0.weight"], weights["0.weight"])


def test_background_checkpoints_land_in_order_and_keep_the_last_n(workdir: Path):
    state = _trained_state()
    with CheckpointManager(workdir / "ckpt", keep_last=2) as saver:
        for epoch in range(1, 6):
            state.epoch = epoch
            loop.save_state(saver, state, {"seed": 0}, "run-1", {"n": 8}, background=True)

    assert [path.name for path in list_checkpoints(workdir / "ckpt")] == [
        "epoch-0004.pt", "epoch-0005.pt"]
    assert not list((workdir / "ckpt").glob("*.tmp"))


def test_a_failed_background_write_is_raised_on_the_training_thread(workdir: Path):
    blocked = workdir / "not-a-folder"
    blocked.write_text("a file where the checkpoint folder should be")
    state = _trained_state()
    saver = CheckpointManager(blocked / "ckpt")

    loop.save_state(saver, state, {"seed": 0}, "run-1", {"n": 8}, background=True)

    with pytest.raises(OSError):
        saver.wait()
    saver.wait()  # reported once: the manager can go on


def test_an_error_in_training_is_not_hidden_by_a_failed_write(workdir: Path):
    blocked = workdir / "not-a-folder"
    blocked.write_text("")
    state = _trained_state()

    with pytest.raises(KeyboardInterrupt), CheckpointManager(blocked / "ckpt") as saver:
        loop.save_state(saver, state, {"seed": 0}, "run-1", {"n": 8}, background=True)
        raise KeyboardInterrupt
