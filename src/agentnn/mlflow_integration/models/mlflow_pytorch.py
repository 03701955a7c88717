"""Models that plain MLflow logged with ``mlflow.pytorch``: the ``pt2`` and ``pickle`` formats.

Why it exists: since MLflow 3, ``mlflow.pytorch.log_model(model, name=...)`` writes the ``pt2``
format by default (``torch.export.save``; see ``_get_default_serialization_format`` in
``mlflow/pytorch/__init__.py``). Loading a ``pt2`` archive unpickles the records it holds, so
a crafted archive can run code; MLflow 3.17 ships a check that every record is JSON, plain text
or accepted by torch's restricted ``weights_only`` unpickler
(``mlflow.pytorch._validate_pt2_archive_is_pickle_free``). MLflow runs that check only when
``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` is false, which is not its default; agentnn runs it on
every ``pt2`` load and asks for ``trust=True`` when it fails. A ``pickle`` model always needs
trust.

A ``torch.export`` program refuses ``.eval()`` and ``.train()`` (its graph was fixed when it was
exported), so it is handed out wrapped in :class:`ExportedModule`, which accepts both and calls
through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from agentnn.errors import MalformedModelError, ModelError, UnsafeModelError
from agentnn.mlflow_integration.models.format import inside_folder, read_small_text

MLMODEL_FILE = "MLmodel"
MLMODEL_MAX_BYTES = 1 << 20  # an MLmodel file is a few kilobytes
PT2_FILE = "model.pt2"  # mlflow.pytorch._EXPORTED_TORCH_MODEL_FILE_NAME
PICKLE_FILE = "model.pth"  # mlflow.pytorch._SERIALIZED_TORCH_MODEL_FILE_NAME
TRUST_HINT = "pass trust=True (--trust) only if you trust whoever wrote it"


class ExportedModule(torch.nn.Module):
    """A ``torch.export`` program as an ordinary module: callable, and ``eval()`` works.

    The program's behaviour (dropout, batch norm) was fixed when it was exported, so switching
    modes changes only this wrapper's flag; the program itself is never asked to switch.
    """

    def __init__(self, program: torch.nn.Module) -> None:
        super().__init__()
        self.program = program

    def train(self, mode: bool = True) -> ExportedModule:
        self.training = mode
        return self

    # Any: an exported program takes and returns whatever pytrees it was exported with
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.program(*args, **kwargs)


def read_mlmodel(folder: Path) -> dict[str, Any]:
    """The MLmodel file of a folder as a checked dict (YAML, safe loader, bounded size)."""
    import yaml

    path = inside_folder(folder, MLMODEL_FILE, MLMODEL_FILE)
    text = read_small_text(path, MLMODEL_MAX_BYTES, MLMODEL_FILE)
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError, ValueError) as error:
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else "?"
        raise MalformedModelError(str(path), f"not valid YAML: {reason}") from None
    if not isinstance(data, dict):
        raise MalformedModelError(str(path), f"expected a mapping, got {type(data).__name__}")
    flavors = data.get("flavors")
    if not isinstance(flavors, dict) or not all(
        isinstance(name, str) and isinstance(conf, dict) for name, conf in flavors.items()
    ):
        raise MalformedModelError(str(path), "its 'flavors' must map flavour names to mappings")
    for key in ("run_id", "model_id"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise MalformedModelError(str(path), f"its {key!r} must be a string")
    for key in ("metadata", "signature"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise MalformedModelError(str(path), f"its {key!r} must be a mapping")
    return data


def pytorch_model_data(folder: Path, flavor: dict[str, Any]) -> tuple[str, Path]:
    """The serialization (``"pt2"`` or ``"pickle"``) of a pytorch flavour and its data path.

    Decided from the files, as MLflow's own loader does (a ``model.pth`` means pickle),
    because the MLmodel file does not record the format.
    """
    data = inside_folder(folder, flavor.get("model_data", "data"), "the pytorch model_data path")
    if data.is_dir():
        if (data / PICKLE_FILE).exists():
            return "pickle", data
        archive = inside_folder(data, PT2_FILE, "the pt2 archive")
        if archive.is_file():
            return "pt2", archive
        raise MalformedModelError(str(data), f"holds neither {PT2_FILE} nor {PICKLE_FILE}")
    if data.is_file():
        return "pickle", data
    raise MalformedModelError(str(folder), "its pytorch flavour names model data that is missing")


def pt2_is_pickle_free(archive: Path) -> tuple[bool, str]:
    """Whether MLflow's check finds the pt2 archive free of pickle, and its reason if not."""
    try:
        from mlflow.pytorch import _validate_pt2_archive_is_pickle_free
    except ImportError:
        return False, "this MLflow has no check that a pt2 archive holds no pickle"
    try:
        _validate_pt2_archive_is_pickle_free(str(archive))
    except Exception as error:  # MlflowException, or a zip the check cannot even read
        text = str(error).strip()
        return False, (text.split(". ")[0] if text else type(error).__name__)[:300]
    return True, ""


def load_pt2(archive: Path, *, source: str, trust: bool, device: str) -> tuple[ExportedModule,
                                                                                 bool]:
    """The program in a pt2 archive, wrapped, and whether it passed MLflow's pickle check.

    Raises UnsafeModelError when the check fails and ``trust`` is False.
    """
    clean, reason = pt2_is_pickle_free(archive)
    if not clean and not trust:
        raise UnsafeModelError(
            f"refusing to load {source}: it is an mlflow.pytorch pt2 (torch.export) model that "
            f"MLflow's check does not find free of pickle ({reason}); {TRUST_HINT}"
        )
    try:
        program = torch.export.load(str(archive)).module()
    except Exception as error:  # a damaged or foreign archive
        raise MalformedModelError(str(archive), f"is not a loadable torch.export archive "
                                  f"({type(error).__name__}: {_short(error)})") from None
    wanted = torch.device(device).type
    for tensor in (*program.parameters(), *program.buffers()):
        if tensor.device.type != wanted:
            raise ModelError(
                f"{source} was exported with tensors on {tensor.device.type!r}; a pt2 model "
                f"cannot move to {wanted!r}: load it with device={tensor.device.type!r}"
            )
    return ExportedModule(program).eval(), clean


def load_pickled(folder: Path, *, source: str, device: str) -> torch.nn.Module:
    """A pickled ``mlflow.pytorch`` model, through MLflow's own loader (trust was given)."""
    import mlflow.pytorch

    try:
        module = mlflow.pytorch.load_model(str(folder), map_location=device)
    except Exception as error:  # whatever unpickling the file raised
        raise ModelError(f"{source} could not be unpickled: {type(error).__name__}: "
                         f"{_short(error)}") from None
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"{source} unpickled to {type(module).__name__}, not a torch module")
    return module.eval()


def _short(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[0] if lines else "")[:200]
