"""The safe model format: safetensors weights plus a JSON spec that agentnn rebuilds from.

Why not ``mlflow.pytorch``: it pickles the module, and unpickling a file runs whatever code the
file names. A model in this format loads without unpickling anything: the architecture is a
builder from the registry of builders (``builder_registry``) called with a JSON config, and the
weights are plain tensors (safetensors) whose sha256 is recorded at save time and checked at
load time.

A model file is data, never code: its builder must be a registered name (nothing it names is
imported), its config may hold only the keys that builder declared, every path it names stays
inside its folder, the weights must be safetensors whose tensors fit the rebuilt module (checked
on PyTorch's "meta" device before anything is allocated), and whatever is malformed ends in
:class:`~agentnn.errors.MalformedModelError` (a ModelIntegrityError) with one line.

A saved model is a folder::

    weights.safetensors
    spec.json   {"format_version": 1, "builder": "mlp", "config": {...}, "metadata": {...},
                 "sha256": "<of weights.safetensors>", "torch_version": "2.13.0",
                 "weights": "weights.safetensors"}

In MLflow it is a pyfunc model whose loader module is this module, with the folder above as
its data (``<model>/data/agentnn_torch/``), so plain ``mlflow.pyfunc.load_model`` serves it too.

Example::

    with ExperimentTracker("advanced_training").start_run():
        info = log_torch_model(net, builder="advanced_training", config=asdict(net_config),
                               input_example=x[:5], register_as="agent-router")
    info.model_uri        # models:/m-…
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata as package_metadata
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any, NoReturn, TypedDict, cast

from agentnn.errors import (
    MalformedModelError,
    ModelError,
    ModelIntegrityError,
)
from agentnn.mlflow_integration.models.builders import canonical_name, check_config, get_builder
from agentnn.mlflow_integration.store.classify import is_already_exists

if TYPE_CHECKING:
    import numpy as np
    import torch
    from mlflow.models import ModelSignature

# --- format constants ----------------------------------------------------------------------
FORMAT_VERSION = 1  # bump when spec.json changes incompatibly
WEIGHTS_FILE = "weights.safetensors"
SPEC_FILE = "spec.json"
DATA_DIR_NAME = "agentnn_torch"  # the folder name under the MLflow model's data/
LOADER_MODULE = "agentnn.mlflow_integration.models.format"  # MLmodel names it; must not move
HASH_CHUNK_BYTES = 1 << 20
SPEC_MAX_BYTES = 1 << 20  # a spec is a few hundred bytes; a larger one is not ours
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")

# --- tags that let others find the model ---------------------------------------------------
FORMAT_TAG = "agentnn.format"  # on the logged model: "safetensors-v1"
SHA256_TAG = "agentnn.sha256"  # on the logged model: the record the loader checks against
BUILDER_TAG = "agentnn.builder"
RUN_MODEL_ID_TAG = "agentnn.model_id"  # on the run: the id of the model it logged last
RUN_MODEL_URI_TAG = "agentnn.model_uri"

# Packages a serving environment needs; pinned to what is installed, and never inferred,
# because MLflow's inference starts a subprocess and costs about 10 s per model.
REQUIRED_PACKAGES = ("torch", "safetensors", "numpy", "mlflow", "agentnn")


class _RequiredSpecFields(TypedDict):
    format_version: int
    builder: str
    config: dict[str, Any]  # the builder's config: JSON of whatever shape the builder takes
    sha256: str


class ModelSpec(_RequiredSpecFields, total=False):
    """A model folder's spec.json as :func:`read_spec` returns it, each field checked."""

    weights: str
    metadata: dict[str, Any]  # JSON the trainer attached; agentnn passes it on unread


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


# --- paths inside a model folder -----------------------------------------------------------


def inside_folder(folder: Path, relative: object, what: str) -> Path:
    """``relative`` resolved inside ``folder``; refused when it is absolute, climbs with
    ``..`` or leads out through a symlink, so a model file can never make agentnn read
    elsewhere."""
    if not isinstance(relative, str) or not relative or "\x00" in relative:
        raise MalformedModelError(str(folder), f"{what} must be a relative path inside the "
                                  f"model folder, got {relative!r:.80}")
    candidate = PurePosixPath(relative.replace("\\", "/"))
    if (candidate.is_absolute() or PureWindowsPath(relative).drive
            or ".." in candidate.parts):
        raise MalformedModelError(str(folder), f"{what} {relative!r:.80} leaves the model folder")
    try:
        root = folder.resolve()
        resolved = (root / candidate).resolve()
    except (OSError, RuntimeError, ValueError) as error:
        raise MalformedModelError(str(folder), f"{what} {relative!r:.80} cannot be resolved: "
                                  f"{error}") from None
    if resolved != root and root not in resolved.parents:
        raise MalformedModelError(str(folder), f"{what} {relative!r:.80} leads out of the model "
                                  "folder through a symlink")
    return resolved


def read_small_text(path: Path, limit: int, what: str) -> str:
    """A small text file of a model (spec.json, MLmodel), refused when huge or not UTF-8."""
    try:
        if not path.is_file():
            raise MalformedModelError(str(path), f"{what} is not a regular file")
        if path.stat().st_size > limit:
            raise MalformedModelError(str(path), f"{what} is larger than {limit} bytes")
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedModelError(str(path), f"{what} is not UTF-8 text") from None
    except OSError as error:
        raise MalformedModelError(str(path), f"{what} cannot be read: {error}") from None


# --- builders ------------------------------------------------------------------------------


def build_module(
    builder: object, config: object, *, device: str | None = None, source: Path | None = None
) -> torch.nn.Module:
    """A fresh, untrained module from a registered builder and its JSON config.

    ``device="meta"`` builds the shapes only (nothing is allocated). With ``source`` (the
    spec being loaded) a failing builder means a malformed model file; without it (saving), a
    config the caller passed.
    """
    import torch

    entry = get_builder(builder)
    config = check_config(entry, config)
    try:
        if device is None:
            module = entry.function(config)
        else:
            with torch.device(device):
                module = entry.function(config)
    except Exception as error:  # the builder rejected the config: a bad file or a bad call
        reason = (f"builder {entry.name!r} cannot build from its config: "
                  f"{type(error).__name__}: {_last_line(error)}")
        if source is not None:
            raise MalformedModelError(str(source), reason) from None
        raise ModelError(f"model {reason}") from None
    if not isinstance(module, torch.nn.Module):
        reason = f"builder {entry.name!r} returned {type(module).__name__}, not a torch.nn.Module"
        if source is not None:
            raise MalformedModelError(str(source), reason)
        raise ModelError(f"model {reason}")
    return module


def _last_line(error: BaseException) -> str:
    """The last non-blank line of an error's text: parsers and torch put the summary last."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "")[:300]


# --- hashing and the spec ------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so large weight files do not fill memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _to_json(value: object, what: str) -> Any:  # Any: whatever JSON the value was
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


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def read_spec(path: Path) -> ModelSpec:
    """The spec.json of a saved model folder, checked field by field before anything uses it."""
    folder = Path(path)
    if not (folder / SPEC_FILE).exists() and not (folder / SPEC_FILE).is_symlink():
        raise ModelError(f"{folder} is not an agentnn model folder: it has no {SPEC_FILE}")
    spec_path = inside_folder(folder, SPEC_FILE, SPEC_FILE)
    text = read_small_text(spec_path, SPEC_MAX_BYTES, SPEC_FILE)
    try:
        spec = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise MalformedModelError(str(spec_path), f"not valid JSON: {_last_line(error)}") from None
    if not isinstance(spec, dict):
        raise MalformedModelError(str(spec_path), f"expected a JSON object, got "
                                  f"{type(spec).__name__}")
    missing = [key for key in ("format_version", "builder", "config", "sha256") if key not in spec]
    if missing:
        raise MalformedModelError(str(spec_path), f"lacks {', '.join(missing)}")
    version = spec["format_version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise MalformedModelError(str(spec_path), f"format_version must be an integer, got "
                                  f"{version!r:.40}")
    if version != FORMAT_VERSION:
        raise ModelError(
            f"{spec_path} has format_version {version!r}; this agentnn reads "
            f"version {FORMAT_VERSION}: upgrade agentnn"
        )
    expected_types = {"builder": str, "config": dict, "sha256": str, "weights": str,
                      "metadata": dict}
    for key, kind in expected_types.items():
        if key in spec and not isinstance(spec[key], kind):
            raise MalformedModelError(str(spec_path), f"{key} must be a {kind.__name__}, got "
                                      f"{type(spec[key]).__name__}")
    if not SHA256_PATTERN.match(spec["sha256"]):
        raise MalformedModelError(str(spec_path), f"sha256 {spec['sha256']!r:.80} is not a "
                                  "hex sha256")
    return cast("ModelSpec", spec)  # the fields were checked one by one above


def verify_weights(path: Path, spec: ModelSpec) -> Path:
    """The weights file of a model folder, after checking it against the spec's sha256."""
    folder = Path(path)
    weights = inside_folder(folder, spec.get("weights", WEIGHTS_FILE), "the weights path")
    if not weights.is_file():
        raise MalformedModelError(str(folder), f"it has no weights file "
                                  f"{spec.get('weights', WEIGHTS_FILE)!r:.80}")
    try:
        actual = file_sha256(weights)
    except OSError as error:
        raise MalformedModelError(str(weights), f"cannot be read: {error}") from None
    if actual != spec["sha256"]:
        raise ModelIntegrityError(str(weights), spec["sha256"], actual)
    return weights


def weights_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from a safetensors header, without reading the tensors.

    safetensors checks that the header's offsets cover exactly the file, so these shapes are
    backed by bytes on disk: a file cannot announce tensors larger than itself.
    """
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt") as stream:
            return {name: tuple(stream.get_slice(name).get_shape()) for name in stream.keys()}
    except Exception as error:  # SafetensorError and friends: not our weights
        raise MalformedModelError(str(weights), f"is not a safetensors file "
                                  f"({_last_line(error)})") from None


def check_fits(module: torch.nn.Module, shapes: Mapping[str, tuple[int, ...]],
               weights: Path) -> None:
    """Refuse weights whose tensor names or shapes differ from the module's state dict.

    A key the file lacks is allowed only where another tensor of the same shape is present
    (safetensors stores tied weights once).
    """
    wanted = {name: tuple(tensor.shape) for name, tensor in module.state_dict().items()}
    unexpected = sorted(set(shapes) - set(wanted))
    wrong = sorted(name for name in set(shapes) & set(wanted) if shapes[name] != wanted[name])
    present = set(shapes.values())
    missing = sorted(name for name in set(wanted) - set(shapes) if wanted[name] not in present)
    if unexpected or wrong or missing:
        parts = []
        if wrong:
            name = wrong[0]
            parts.append(f"{name} has shape {list(shapes[name])}, the module wants "
                         f"{list(wanted[name])}")
        if unexpected:
            parts.append(f"unexpected tensors {', '.join(unexpected[:3])}")
        if missing:
            parts.append(f"missing tensors {', '.join(missing[:3])}")
        raise MalformedModelError(str(weights), "the weights do not fit the rebuilt module: "
                                  + "; ".join(parts))


# --- save and load a local folder ----------------------------------------------------------


def save_torch_model(
    module: torch.nn.Module,
    path: str | Path,
    *,
    builder: str,
    config: Mapping[str, object],
    metadata: Mapping[str, object] | None = None,
) -> Path:
    """Write ``module`` to the folder ``path`` in the safe format; returns the folder.

    ``builder`` is a registered builder name (a legacy dotted path of agentnn's own builders
    is accepted and stored under its registry name). The builder is called once with ``config``
    and must produce a module with exactly the same parameter names and shapes: a config that
    cannot rebuild the model fails here, while the trainer still has it, instead of at load time.
    """
    import torch
    from safetensors.torch import load_model, save_model

    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"expected a torch.nn.Module, got {type(module).__name__}")
    name = canonical_name(builder)
    config = _to_json(dict(config), "config")
    metadata = _to_json(dict(metadata or {}), "metadata")
    rebuilt = build_module(name, config)

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / WEIGHTS_FILE
    save_model(module, str(weights))
    try:
        load_model(rebuilt, str(weights), strict=True)
    except RuntimeError as error:
        raise ModelError(
            f"model builder {name!r} with the given config does not rebuild this module "
            f"({_last_line(error)}); pass the config the module was built from"
        ) from None
    spec = {
        "format_version": FORMAT_VERSION,
        "builder": name,
        "config": config,
        "metadata": metadata,
        "sha256": file_sha256(weights),
        "weights": WEIGHTS_FILE,
        "torch_version": torch.__version__,
    }
    (folder / SPEC_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True), encoding="utf-8")
    return folder


def load_torch_model(
    path: str | Path, *, device: str = "cpu", expected_sha256: str | None = None
) -> torch.nn.Module:
    """Rebuild the module saved in ``path``, in eval mode, after checking its weights.

    Checks, in order: the spec's fields; the weights' sha256 against the spec and, when given,
    against ``expected_sha256`` (the hash the store recorded when the model was logged, so
    rewriting the weights together with the spec is noticed); that the file is safetensors;
    that its tensors fit the module the builder makes (on the meta device, so a config asking
    for huge shapes allocates nothing); then it builds and loads for real.

    Raises:
        ModelIntegrityError: the weights do not match a recorded sha256, or (as
            MalformedModelError) a file is malformed, foreign or names a path outside.
        UntrustedBuilderError: the builder is not registered, or the config has keys it
            does not declare.
    """
    from safetensors.torch import load_model

    folder = Path(path)
    spec = read_spec(folder)
    weights = verify_weights(folder, spec)
    if expected_sha256 is not None and spec["sha256"] != expected_sha256:
        raise ModelIntegrityError(str(weights), expected_sha256, spec["sha256"])
    shapes = weights_shapes(weights)
    spec_path = folder / SPEC_FILE
    skeleton = build_module(spec["builder"], spec["config"], device="meta", source=spec_path)
    check_fits(skeleton, shapes, weights)  # only now may the config's shapes be allocated
    module = build_module(spec["builder"], spec["config"], source=spec_path)
    try:
        load_model(module, str(weights), strict=True, device=device)
        return module.to(device).eval()
    except Exception as error:  # dtype or storage trouble the header check cannot see
        raise MalformedModelError(str(weights), f"the weights do not load into the rebuilt "
                                  f"module: {_last_line(error)}") from None


# --- MLflow --------------------------------------------------------------------------------


def _forward_numpy(module: torch.nn.Module,
                   inputs: object) -> np.ndarray | dict[str, np.ndarray]:
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

    def predict(self, model_input: object,
                params: dict[str, object] | None = None) -> np.ndarray | dict[str, np.ndarray]:
        return _forward_numpy(self.module, model_input)


def _load_pyfunc(data_path: str) -> TorchPyfuncModel:
    """Entry point MLflow calls for the pyfunc flavour; ``data_path`` is our model folder.

    MLflow hands over only the folder, so this path checks the folder's own sha256; agentnn's
    loader also checks the hash the store recorded."""
    return TorchPyfuncModel(load_torch_model(data_path))


def _signature(module: torch.nn.Module,
               input_example: np.ndarray | None) -> ModelSignature | None:
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
    config: Mapping[str, object],
    name: str = "model",
    input_example: np.ndarray | None = None,
    register_as: str | None = None,
    metadata: Mapping[str, object] | None = None,
) -> LoggedTorchModel:
    """Log ``module`` in the safe format into the ACTIVE MLflow run; register it when asked.

    The module takes one float32 tensor (batch, n_features) and returns a tensor or a dict of
    tensors. Requirements are pinned explicitly, which keeps logging well under a second.
    The run gets the tags ``agentnn.model_id`` and ``agentnn.model_uri`` so the model can be
    found from the run; the logged model gets ``agentnn.sha256``, the hash every later load
    from the store is checked against (the copy inside the model's folder could be rewritten
    together with the weights).
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
        spec = read_spec(folder)
        sha256 = spec["sha256"]
        info = mlflow.pyfunc.log_model(
            name=name,
            loader_module=LOADER_MODULE,
            data_path=str(folder),
            pip_requirements=pip_requirements(),
            signature=_signature(module, input_example),
            input_example=input_example,
            metadata={"agentnn_format_version": FORMAT_VERSION, "agentnn_sha256": sha256},
            tags={FORMAT_TAG: f"safetensors-v{FORMAT_VERSION}", SHA256_TAG: sha256,
                  BUILDER_TAG: spec["builder"]},
        )
    mlflow.set_tags({RUN_MODEL_ID_TAG: info.model_id, RUN_MODEL_URI_TAG: info.model_uri})
    version = (_register(register_as, info.model_uri, info.model_id, run.info.run_id)
               if register_as is not None else None)
    return LoggedTorchModel(
        model_uri=info.model_uri,
        model_id=info.model_id,
        run_id=run.info.run_id,
        name=name,
        sha256=sha256,
        registered_name=register_as if version is not None else None,
        registered_version=version,
    )


def _register(name: str, model_uri: str, model_id: str, run_id: str) -> int:
    """Register the logged model as a new version of ``name`` (created when new); its number.

    Through the client rather than ``log_model(registered_model_name=…)``, which prints
    "Successfully registered model …" and "Created version …" on stderr: what a program
    prints is the program's to decide.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        client.create_registered_model(name)
    except MlflowException as error:
        if not is_already_exists(error):
            raise
    created = client.create_model_version(name, model_uri, run_id=run_id, model_id=model_id)
    return int(created.version)
