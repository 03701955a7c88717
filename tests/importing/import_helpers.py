"""Real sources written by the real tools, and what the store holds after an import."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

TRACKIO_WRITER = Path(__file__).with_name("trackio_writer.py")


def as_float32(value: float) -> float:
    """What TensorBoard keeps of a scalar: a 32-bit float (overflow becomes ±inf)."""
    with np.errstate(over="ignore"):
        return float(np.float32(value))


def stored_value(value: float) -> float | str:
    """A value as MLflow gives it back: NaN compared as text, ±inf clamped to the largest double."""
    if value != value:
        return "nan"
    if math.isinf(value):
        return math.copysign(1.7976931348623157e308, value)
    return value


def point_set(points) -> set[tuple[int, int, float | str]]:
    return {(p.step, p.timestamp, stored_value(p.value)) for p in points}


def fresh_store(folder: Path, template_store: Path) -> str:
    path = folder / "store.db"
    shutil.copyfile(template_store, path)
    return f"sqlite:///{path}"


def write_tensorboard(folder: Path, scalars: dict[str, list[tuple[int, float, float]]],
                      hparams: dict[str, object] | None = None,
                      texts: dict[str, str] | None = None) -> None:
    """One TensorBoard run in ``folder`` through torch's SummaryWriter:
    ``scalars[tag] = [(step, value, walltime), ...]``."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(folder))
    for tag, points in scalars.items():
        for step, value, walltime in points:
            writer.add_scalar(tag, value, step, walltime=walltime)
    for tag, text in (texts or {}).items():
        writer.add_text(tag, text, 0)
    if hparams:
        writer.add_hparams(hparams, {"hparam/score": 1.0}, run_name=".")
    writer.close()


def write_trackio(trackio_dir: Path, runs: list[dict]) -> dict:
    """Runs logged by trackio itself (``trackio.init/log/finish``) in a child process whose
    ``TRACKIO_DIR`` is ``trackio_dir``; returns what trackio reads back (``get_logs``) per run:
    ``{run name: [{"step", "timestamp", metric: value, ...}, ...]}``.

    ``runs``: ``[{"project", "name", "config", "logs": [[metrics, step or None], ...]}]``.
    """
    env = {**os.environ, "TRACKIO_DIR": str(trackio_dir), "HF_HUB_OFFLINE": "1"}
    spec = trackio_dir.parent / "trackio-spec.json"
    out = trackio_dir.parent / "trackio-logs.json"
    spec.write_text(json.dumps(runs))
    subprocess.run([sys.executable, str(TRACKIO_WRITER), str(spec), str(out)], env=env,
                   check=True, capture_output=True, timeout=300)
    return json.loads(out.read_text())
