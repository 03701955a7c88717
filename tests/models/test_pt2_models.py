"""Models that plain MLflow 3 logs by default (``pt2``, torch.export) load without trust when
MLflow's pickle check passes, as a callable module in eval mode; otherwise they ask for trust."""

from __future__ import annotations

import zipfile
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import numpy as np
import pytest
import torch

from agentnn.errors import UnsafeModelError
from agentnn.mlflow_integration.models.mlflow_pytorch import ExportedModule


class TinyRouter(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(4, 8)
        self.drop = torch.nn.Dropout(0.5)
        self.out = torch.nn.Linear(8, 3)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(torch.relu(self.hidden(features))))


@pytest.fixture
def pt2_run(store_uri: str, cache_dir: Path):
    """A model logged with mlflow.pytorch's defaults (requirements given: no 11 s inference)."""
    torch.manual_seed(0)
    module = TinyRouter().eval()
    example = np.random.default_rng(0).random((3, 4), dtype=np.float32)
    mlflow.set_tracking_uri(store_uri)
    with mlflow.start_run() as run:
        info = mlflow.pytorch.log_model(module, name="plain", input_example=example,
                                        pip_requirements=["torch"],
                                        registered_model_name="plain-router")
    return module, example, run.info.run_id, info


def test_mlflow_s_default_is_pt2_here(pt2_run, client):
    _, _, _, info = pt2_run
    folder = Path(urlparse(client.get_logged_model(info.model_id).artifact_location).path)
    assert (folder / "data" / "model.pt2").is_file()
    assert not (folder / "data" / "model.pth").exists()


@pytest.mark.parametrize("form", ["runs", "version", "model_id"])
def test_a_pt2_model_loads_without_trust_as_a_callable_eval_module(pt2_run, loader, form):
    module, example, run_id, info = pt2_run
    uri = {"runs": f"runs:/{run_id}/plain", "version": "plain-router/1",
           "model_id": info.model_id}[form]
    loaded = loader.load(uri)
    assert loaded.format == "pt2" and loaded.safe and loaded.sha256 is None
    assert isinstance(loaded.module, ExportedModule) and not loaded.module.training
    loaded.module.eval()  # calling eval() again is fine, unlike on the bare program
    inputs = torch.from_numpy(example)
    with torch.no_grad():
        assert torch.allclose(loaded.module(inputs), module(inputs))
    assert loaded.run_id == run_id


def test_a_pt2_model_with_a_pickle_record_asks_for_trust_then_loads(pt2_run, loader, client):
    module, example, run_id, info = pt2_run
    location = Path(urlparse(client.get_logged_model(info.model_id).artifact_location).path)
    archive = location / "data" / "model.pt2"
    with zipfile.ZipFile(archive, "a") as zipped:
        prefix = zipped.namelist()[0].split("/", 1)[0]
        zipped.writestr(f"{prefix}/data/constants/extra.pkl", b"\x80\x04cos\nsystem\n.")
    with pytest.raises(UnsafeModelError, match="free of pickle.*trust=True") as caught:
        loader.load("plain-router/1")
    assert "\n" not in str(caught.value)
    trusted = loader.load("plain-router/1", trust=True)
    assert trusted.format == "pt2" and not trusted.safe and not trusted.module.training
    with pytest.raises(UnsafeModelError):  # the memory cache does not lift the rule
        loader.load("plain-router/1")
    with torch.no_grad():
        inputs = torch.from_numpy(example)
        assert torch.allclose(trusted.module(inputs), module(inputs))


def test_a_pickled_model_still_needs_trust(store_uri, loader):
    mlflow.set_tracking_uri(store_uri)
    with mlflow.start_run() as run:
        mlflow.pytorch.log_model(TinyRouter(), name="pickled", pip_requirements=["torch"],
                                 serialization_format="pickle")
    with pytest.raises(UnsafeModelError, match="pickled mlflow.pytorch model"):
        loader.load(f"runs:/{run.info.run_id}/pickled")
    loaded = loader.load(f"runs:/{run.info.run_id}/pickled", trust=True)
    assert loaded.format == "pickle" and not loaded.module.training
