"""What ``agentnn model load`` prints: a loaded model's description and its predictions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentnn.errors import InputError

if TYPE_CHECKING:
    from agentnn.mlflow_integration.models.loading import LoadedModel

DESCRIBED_FIELDS = ("source", "resolved_uri", "name", "version", "alias", "run_id", "model_id",
                    "safe", "signature", "metadata")


def describe_model(loaded: LoadedModel) -> dict[str, Any]:
    """The signature and provenance of a loaded model as plain data."""
    data = {field: getattr(loaded, field, None) for field in DESCRIBED_FIELDS}
    data["signature"] = signature_data(data["signature"])
    spec = getattr(loaded, "spec", None) or {}
    data["builder"] = spec.get("builder")
    data["config"] = spec.get("config")
    data["sha256"] = spec.get("sha256")
    module = getattr(loaded, "module", None)
    if module is not None:
        data["module"] = type(module).__name__
        data["parameters"] = sum(p.numel() for p in module.parameters())
    return data


def signature_data(signature: object) -> object:
    """A model signature as nested data: MLflow's MLmodel file keeps ``inputs``, ``outputs`` and
    ``params`` as JSON text inside its YAML, which printed as JSON would be a string in a string.
    """
    if not isinstance(signature, dict):
        return signature
    decoded: dict[str, object] = {}
    for key, value in signature.items():
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass  # not JSON text: keep it as it is
        decoded[key] = value
    return decoded


def read_inputs(path: Path) -> list[Any]:  # Any: JSON rows, checked by torch.tensor
    """Rows from a JSON file: a list of rows, or an object with an ``inputs`` list."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InputError(f"cannot read --predict file {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise InputError(f"--predict file {path} is not JSON: {error}") from None
    if isinstance(data, dict):
        data = data.get("inputs")
    if not isinstance(data, list) or not data:
        raise InputError(
            f"--predict file {path} must hold a non-empty list of rows or {{\"inputs\": rows}}"
        )
    return data


def predict_json(loaded: LoadedModel, path: Path) -> dict[str, Any]:
    """Run the module on the rows of ``path`` without gradients; outputs as nested lists."""
    import torch

    rows = read_inputs(path)
    try:
        inputs = torch.tensor(rows, dtype=torch.float32)
    except (TypeError, ValueError) as error:
        raise InputError(f"--predict rows in {path} are not a numeric table: {error}") from None
    try:
        with torch.no_grad():
            outputs = loaded.module(inputs)
    except RuntimeError as error:
        message = str(error).splitlines()[0]
        raise InputError(f"the model rejects inputs of shape {list(inputs.shape)}: {message}") \
            from None
    return {"inputs_shape": list(inputs.shape), "outputs": _plain(outputs)}


def _plain(value: object) -> Any:  # Any: the JSON-ready form of whatever the model returned
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
