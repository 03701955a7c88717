"""`ModelManager` on the auth server: list, best, register, alias and load, each way of
giving credentials."""

from __future__ import annotations

import pytest
import team_servers as ts

MODES = ("env", ".env", "uri")


@pytest.mark.parametrize("mode", MODES)
def test_sdk_lists_registers_aliases_and_loads_with_credentials_from(
    mode, team, auth_server, trained, monkeypatch
):
    import torch

    from agentnn.sdk.nn_models import ModelManager

    for name, value in team.credentials(mode, auth_server.url, ts.ALICE, ts.ALICE_PASSWORD
                                        ).items():
        monkeypatch.setenv(name, value)
    manager = ModelManager()

    assert "advanced_training" in [e.name for e in manager.list_experiments()]
    run_ids = [run.run_id for run in manager.list_runs("advanced_training", limit=None)]
    assert {trained["first"], trained["second"]} <= set(run_ids)
    best = manager.best_run("advanced_training", "val_loss", mode="min")
    assert best is not None and best.run_id in run_ids
    name = f"sdk-router-{MODES.index(mode)}"
    version = manager.register_model(trained["first"], name, alias="champion")
    manager.set_alias(name, "challenger", version=version.version)
    versions = manager.list_versions(name)
    assert [(v.version, sorted(v.aliases)) for v in versions] == [
        (version.version, ["challenger", "champion"])
    ]
    loaded = manager.load_model(f"{name}@champion")
    assert isinstance(loaded.module, torch.nn.Module) and not loaded.module.training
    assert auth_server.admin_client().get_registered_model(name).name == name

