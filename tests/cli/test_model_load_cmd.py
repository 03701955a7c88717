"""`agentnn model load`: prints the signature, predicts from a JSON file, needs --trust."""

from __future__ import annotations

import json

import pytest

MLP_CONFIG = {"n_features": 3, "hidden": [4], "heads": {"agent_logits": 2}}


@pytest.fixture
def registered(populated_copy, log_router_and_pickled):
    """A safe-format MLP (router@champion) and a pickled model (pickled/1) in the store."""
    return log_router_and_pickled(
        populated_copy["uri"], populated_copy["routing_experiment"], MLP_CONFIG
    )


def test_load_prints_the_signature_and_provenance_as_json(cli, registered):
    result = cli("model", "load", "router@champion", "--tracking-uri", registered["uri"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["name"] == "router" and data["version"] == "1" and data["alias"] == "champion"
    assert data["safe"] is True
    assert data["builder"] == "mlp"  # the registry name of managers.builders.build_mlp
    assert data["config"] == MLP_CONFIG
    assert data["parameters"] == 3 * 4 + 4 + 4 * 2 + 2


def test_predict_runs_the_model_on_the_rows_of_a_json_file(cli, registered, workdir):
    import torch

    rows = [[0.1, 0.2, 0.3], [1.0, -1.0, 0.5]]
    (workdir / "input.json").write_text(json.dumps({"inputs": rows}))
    result = cli("model", "load", "router/1", "--predict", str(workdir / "input.json"),
                 "--tracking-uri", registered["uri"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    with torch.no_grad():
        expected = registered["module"](torch.tensor(rows))["agent_logits"]
    assert data["inputs_shape"] == [2, 3]
    assert torch.allclose(torch.tensor(data["outputs"]["agent_logits"]), expected)


def test_a_pickled_model_is_refused_without_trust_and_loads_with_it(cli, registered):
    refused = cli("model", "load", "pickled/1", "--tracking-uri", registered["uri"])
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: ") and "trust" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    trusted = cli("model", "load", "pickled/1", "--trust", "--tracking-uri", registered["uri"])
    assert trusted.exit_code == 0, trusted.output
    assert json.loads(trusted.stdout)["safe"] is False


def test_a_bad_predict_file_is_one_line_and_exit_1(cli, registered, workdir):
    (workdir / "bad.json").write_text("{not json")
    result = cli("model", "load", "router/1", "--predict", str(workdir / "bad.json"),
                 "--tracking-uri", registered["uri"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --predict file") and "is not JSON" in result.stderr
