"""ModelManager.list_versions: versions newest first, with aliases, run and its metrics."""

from __future__ import annotations

import pytest

from agentnn.errors import NotFoundError
from agentnn.sdk.nn_models import ModelManager


def test_versions_list_newest_first_with_run_metrics_and_json_fields(populated_copy):
    manager = ModelManager(populated_copy["uri"], page_size=1)  # one version per result page
    for _ in range(3):
        manager.register_model(populated_copy["with_model"], "agent-router")
    manager.set_alias("agent-router", "champion", version=2)
    versions = manager.list_versions("agent-router")
    assert [v.version for v in versions] == [3, 2, 1]
    data = versions[1].to_dict()
    assert data["aliases"] == ["champion"]
    assert data["run_id"] == populated_copy["with_model"]
    assert data["run_metrics"] == {"val_loss": 0.42}
    assert data["status"] == "READY"
    assert data["created"].endswith("+00:00")
    assert data["model_id"].startswith("m-") and data["source"]
    assert data["stage"] is None


def test_an_unknown_model_name_is_a_not_found_error(populated):
    with pytest.raises(NotFoundError, match="registered model 'nobody' not found"):
        ModelManager(populated["uri"]).list_versions("nobody")
