"""The safe model format: safetensors weights plus a JSON spec that agentnn rebuilds from.

Why not ``mlflow.pytorch``: it pickles the module, and unpickling a file runs whatever code the
file names. A model in this format loads without unpickling anything: the architecture is a
builder function inside the ``agentnn`` package called with a JSON config, and the weights are
plain tensors (safetensors) whose sha256 is recorded at save time and checked at load time.

A saved model is a folder::

    weights.safetensors
    spec.json   {"format_version": 1, "builder": "agentnn.nn_models.x:build_model",
                 "config": {...}, "metadata": {...}, "sha256": "<of weights.safetensors>",
                 "torch_version": "2.13.0", "weights": "weights.safetensors"}

In MLflow it is a pyfunc model whose loader module is this module, with the folder above as
its data (``<model>/data/agentnn_torch/``), so plain ``mlflow.pyfunc.load_model`` serves it too.

Example::

    with ExperimentTracker("advanced_training").start_run():
        info = log_torch_model(net, builder="agentnn.nn_models.advanced_training:build_model",
                               config=asdict(net_config), input_example=x[:5],
                               register_as="agent-router")
    info.model_uri        # models:/m-…
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata as package_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentnn.errors import ModelError, ModelIntegrityError, UntrustedBuilderError

if TYPE_CHECKING:
    import numpy as np
    import torch

# --- format constants ----------------------------------------------------------------------
FORMAT_VERSION = 1  # bump when spec.json changes incompatibly
WEIGHTS_FILE = "weights.safetensors"
SPEC_FILE = "spec.json"
DATA_DIR_NAME = "agentnn_torch"  # the folder name under the MLflow model's data/
LOADER_MODULE = "agentnn.mlflow_integration.model_format"  # MLmodel names it; must not move
TRUSTED_BUILDER_PACKAGE = "agentnn"  # builders are imported only from inside this package
BUILDER_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")  # "package.module:function"
HASH_CHUNK_BYTES = 1 << 20

# --- tags that let others find the model ---------------------------------------------------
FORMAT_TAG = "agentnn.format"  # on the logged model: "safetensors-v1"
SHA256_TAG = "agentnn.sha256"
BUILDER_TAG = "agentnn.builder"
RUN_MODEL_ID_TAG = "agentnn.model_id"  # on the run: the id of the model it logged last
RUN_MODEL_URI_TAG = "agentnn.model_uri"

# Packages a serving environment needs; pinned to what is installed, and never inferred,
# because MLflow's inference starts a subprocess and costs about 10 s per model.
REQUIRED_PACKAGES = ("torch", "safetensors", "numpy", "mlflow", "agentnn")


@dataclass(frozen=True)
class LoggedTorchModel:
    """Where :func:`log_torch_model` put a model, and the version it registered, if any."""

    model_uri: str
    """``models:/<model_id>``; loads with ``model_loading.load_model``."""
    model_id: str
    """The MLflow 3 logged-model id (``m-…``)."""
    run_id: str
    """The run the model was logged into."""
    name: str
    """The model's name inside the run (``runs:/<run_id>/<name>`` also loads it)."""
    sha256: str
    """Hash of the weights file, checked on every load."""
    registered_name: str | None = None
    registered_version: int | None = None
    """The new registry version, or None when the model was not registered."""


# --- builders ------------------------------------------------------------------------------


def check_builder(builder: str) -> None:
    """Refuse a builder string that is malformed or lies outside the agentnn package."""
    if not isinstance(builder, str) or not BUILDER_PATTERN.match(builder):
        raise UntrustedBuilderError(
            str(builder), "expected 'agentnn.<module>:<function>', e.g. "
            "'agentnn.nn_models.advanced_training:build_model'"
        )
    module_path = builder.split(":", 1)[0]
    if not module_path.startswith(TRUSTED_BUILDER_PACKAGE + "."):
        raise UntrustedBuilderError(
            builder, f"only builders inside the {TRUSTED_BUILDER_PACKAGE!r} package are imported, "
            "because importing a module named by a model file could run any code"
        )


def import_builder(builder: str) -> Callable[..., Any]:
    """The builder function a spec names, imported only after :func:`check_builder`."""
    check_builder(builder)
    module_path, function_name = builder.split(":", 1)
    try:
        module = importlib.import_module(module_path)
    except ImportError as error:
        raise ModelError(f"model builder {builder!r} cannot be imported: {error}") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ModelError(f"model builder {builder!r}: {module_path} has no function "
                         f"{function_name!r}")
    return function


def build_module(builder: str, config: Mapping[str, Any]) -> torch.nn.Module:
    """A fresh, untrained module from its builder and JSON config."""
    import torch

    module = import_builder(builder)(dict(config))
    if not isinstance(module, torch.nn.Module):
        raise ModelError(
            f"model builder {builder!r} returned {type(module).__name__}, not a torch.nn.Module"
        )
    return module


# --- hashing and the spec ------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so large weight files do not fill memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _to_json(value: Any, what: str) -> Any:
    """Round-trip through JSON so the spec holds exactly what will be read back."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ModelError(f"model {what} must be JSON-serialisable: {error}") from None


def _installed_version(package: str) -> str | None:
    try:
        return package_metadata.version(package).split("+", 1)[0]
    except package_metadata.PackageNotFoundError:
        return None


def pip_requirements() -> list[str]:
    """Pinned requirements of the packages a loaded model needs (see REQUIRED_PACKAGES)."""
    pins = []
    for package in REQUIRED_PACKAGES:
        version = _installed_version(package)
        pins.append(f"{package}=={version}" if version else package)
    return pins


def read_spec(path: Path) -> dict[str, Any]:
    """The spec.json of a saved model folder, checked for the fields loading relies on."""
    spec_path = Path(path) / SPEC_FILE
    if not spec_path.is_file():
        raise ModelError(f"{path} is not an agentnn model folder: it has no {SPEC_FILE}")
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelError(f"{spec_path} cannot be read as JSON: {error}") from None
    missing = [key for key in ("format_version", "builder", "config", "sha256") if key not in spec]
    if missing:
        raise ModelError(f"{spec_path} lacks {', '.join(missing)}")
    if spec["format_version"] != FORMAT_VERSION:
        raise ModelError(
            f"{spec_path} has format_version {spec['format_version']!r}; this agentnn reads "
            f"version {FORMAT_VERSION}: upgrade agentnn"
        )
    return spec


def verify_weights(path: Path, spec: Mapping[str, Any]) -> Path:
    """The weights file of a model folder, after checking it against the spec's sha256."""
    weights = Path(path) / spec.get("weights", WEIGHTS_FILE)
    if not weights.is_file():
        raise ModelError(f"{path} has no weights file {weights.name}")
    actual = file_sha256(weights)
    if actual != spec["sha256"]:
        raise ModelIntegrityError(str(weights), spec["sha256"], actual)
    return weights


# --- save and load a local folder ----------------------------------------------------------


def save_torch_model(
    module: torch.nn.Module,
    path: str | Path,
    *,
    builder: str,
    config: Mapping[str, Any],
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``module`` to the folder ``path`` in the safe format; returns the folder.

    The builder is called once with ``config`` and must produce a module with exactly the same
    parameter names and shapes: a config that cannot rebuild the model fails here, while the
    trainer still has it, instead of at load time.
    """
    import torch
    from safetensors.torch import load_model, save_model

    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"expected a torch.nn.Module, got {type(module).__name__}")
    config = _to_json(dict(config), "config")
    metadata = _to_json(dict(metadata or {}), "metadata")
    rebuilt = build_module(builder, config)

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / WEIGHTS_FILE
    save_model(module, str(weights))
    try:
        load_model(rebuilt, str(weights), strict=True)
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[-1].strip()
        raise ModelError(
            f"model builder {builder!r} with the given config does not rebuild this module "
            f"({first_line}); pass the config the module was built from"
        ) from None
    spec = {
        "format_version": FORMAT_VERSION,
        "builder": builder,
        "config": config,
        "metadata": metadata,
        "sha256": file_sha256(weights),
        "weights": WEIGHTS_FILE,
        "torch_version": torch.__version__,
    }
    (folder / SPEC_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True), encoding="utf-8")
    return folder


def load_torch_model(path: str | Path, *, device: str = "cpu") -> torch.nn.Module:
    """Rebuild the module saved in ``path``, in eval mode, after checking the weights' sha256."""
    from safetensors.torch import load_model

    folder = Path(path)
    spec = read_spec(folder)
    weights = verify_weights(folder, spec)
    module = build_module(spec["builder"], spec["config"])
    try:
        load_model(module, str(weights), strict=True, device=device)
    except RuntimeError as error:
        raise ModelError(f"weights in {folder} do not fit the rebuilt module: {error}") from None
    return module.to(device).eval()


# --- MLflow --------------------------------------------------------------------------------


def _forward_numpy(module: torch.nn.Module, inputs: Any) -> np.ndarray | dict[str, np.ndarray]:
    """Run the module on one float32 batch; a tensor or a dict of tensors back as numpy."""
    import numpy as np
    import torch

    if hasattr(inputs, "to_numpy"):  # a pandas DataFrame or Series
        inputs = inputs.to_numpy()
    batch = np.asarray(inputs, dtype=np.float32)
    if batch.ndim == 1:
        batch = batch[None, :]
    parameter = next(module.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    with torch.no_grad():
        output = module(torch.from_numpy(batch).to(device))
    if isinstance(output, Mapping):
        return {str(key): value.detach().cpu().numpy() for key, value in output.items()}
    if isinstance(output, torch.Tensor):
        return output.detach().cpu().numpy()
    raise ModelError(
        f"the model returned {type(output).__name__}; logged models return a tensor or a dict "
        "of tensors"
    )


class TorchPyfuncModel:
    """What ``mlflow.pyfunc.load_model`` wraps: numpy or pandas in, numpy (or a dict) out."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        return _forward_numpy(self.module, model_input)


def _load_pyfunc(data_path: str) -> TorchPyfuncModel:
    """Entry point MLflow calls for the pyfunc flavour; ``data_path`` is our model folder."""
    return TorchPyfuncModel(load_torch_model(data_path))


def _signature(module: torch.nn.Module, input_example: np.ndarray | None) -> Any:
    """The MLflow signature inferred from one forward pass on the input example."""
    if input_example is None:
        return None
    from mlflow.models import infer_signature

    was_training = module.training
    module.eval()
    try:
        output = _forward_numpy(module, input_example)
    finally:
        module.train(was_training)
    return infer_signature(input_example, output)


def log_torch_model(
    module: torch.nn.Module,
    *,
    builder: str,
    config: Mapping[str, Any],
    name: str = "model",
    input_example: np.ndarray | None = None,
    register_as: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> LoggedTorchModel:
    """Log ``module`` in the safe format into the ACTIVE MLflow run; register it when asked.

    The module takes one float32 tensor (batch, n_features) and returns a tensor or a dict of
    tensors. Requirements are pinned explicitly, which keeps logging well under a second.
    The run gets the tags ``agentnn.model_id`` and ``agentnn.model_uri`` so the model can be
    found from the run.
    """
    import mlflow
    import numpy as np

    run = mlflow.active_run()
    if run is None:
        raise ModelError(
            "log_torch_model logs into the active MLflow run; call it inside "
            "`with tracker.start_run():`"
        )
    if input_example is not None:
        input_example = np.asarray(input_example, dtype=np.float32)
        if input_example.ndim != 2:
            raise ModelError(
                f"input_example must be a (batch, n_features) array, got shape "
                f"{input_example.shape}"
            )
    with tempfile.TemporaryDirectory(prefix="agentnn-model-") as tmp:
        folder = save_torch_model(
            module, Path(tmp) / DATA_DIR_NAME, builder=builder, config=config, metadata=metadata
        )
        sha256 = read_spec(folder)["sha256"]
        info = mlflow.pyfunc.log_model(
            name=name,
            loader_module=LOADER_MODULE,
            data_path=str(folder),
            pip_requirements=pip_requirements(),
            signature=_signature(module, input_example),
            input_example=input_example,
            registered_model_name=register_as,
            metadata={"agentnn_format_version": FORMAT_VERSION, "agentnn_sha256": sha256},
            tags={FORMAT_TAG: f"safetensors-v{FORMAT_VERSION}", SHA256_TAG: sha256,
                  BUILDER_TAG: builder},
        )
    mlflow.set_tags({RUN_MODEL_ID_TAG: info.model_id, RUN_MODEL_URI_TAG: info.model_uri})
    version = info.registered_model_version
    return LoggedTorchModel(
        model_uri=info.model_uri,
        model_id=info.model_id,
        run_id=run.info.run_id,
        name=name,
        sha256=sha256,
        registered_name=register_as if version is not None else None,
        registered_version=int(version) if version is not None else None,
    )
