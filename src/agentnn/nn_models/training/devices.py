"""Where a trainer runs: ``auto``, ``cpu``, ``cuda`` or ``mps``, and mixed precision on CUDA.

Why one module: every trainer resolves the device the same way (``auto`` takes CUDA when
present, then Apple's MPS, else the CPU), moves its data and model there once, and logs the
device it really used as the ``device`` param. The CPU and CUDA paths are the same code; only
the device object differs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from agentnn.errors import TrainerConfigError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda", "mps")
DEFAULT_DEVICE = "auto"


def check_device(name: str) -> None:
    """Raise :class:`TrainerConfigError` unless ``name`` is one of :data:`DEVICES`."""
    if name not in DEVICES:
        raise TrainerConfigError(f"device must be one of {', '.join(DEVICES)}; got {name!r}")


def resolve_device(name: str = DEFAULT_DEVICE) -> torch.device:
    """The torch device for a ``--device`` value; asking for a missing one is an error."""
    import torch

    check_device(name)
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps is not None and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_ok else torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainerConfigError("device 'cuda' was asked for but torch sees no CUDA device; "
                                 "use --device cpu or auto")
    if name == "mps" and not mps_ok:
        raise TrainerConfigError("device 'mps' was asked for but torch sees no MPS device; "
                                 "use --device cpu or auto")
    return torch.device(name)


def amp_enabled(device: torch.device, requested: bool) -> bool:
    """Mixed precision only where it helps and is safe here: on CUDA, when asked for.

    Asked for elsewhere, training goes on in float32 and says so (once), so a run logged with
    ``amp=True`` is not taken for a float16 one.
    """
    if requested and device.type != "cuda":
        import warnings

        from agentnn.errors import SettingIgnoredWarning

        warnings.warn(f"amp (float16 mixed precision) needs CUDA; training on {device.type} "
                      "in float32", SettingIgnoredWarning, stacklevel=2)
    return bool(requested) and device.type == "cuda"


@contextlib.contextmanager
def autocast(device: torch.device, enabled: bool) -> Iterator[None]:
    """float16 autocast on CUDA when ``enabled``; a no-op elsewhere."""
    if not enabled:
        yield
        return
    import torch

    with torch.autocast(device_type=device.type, dtype=torch.float16):
        yield


def grad_scaler(device: torch.device, enabled: bool) -> torch.amp.GradScaler:
    """A gradient scaler for float16 training; disabled (a pass-through) without AMP."""
    import torch

    return torch.amp.GradScaler(device.type, enabled=enabled)
