"""How fast `agentnn model import` brings a run of 1,000,000 points into a SQLite store.

    .venv/bin/python bench/import_speed.py [--steps 100000] [--keys 10] [--only tensorboard]

For each source in :data:`SOURCES`: one run of ``--keys`` metrics over ``--steps`` steps,
written once by the source tool itself and cached under the temp folder (writing takes a
minute or so); then, in this process, the source's reader alone (reading every point, writing
nothing), and the whole import (the same reader, then the writer's bulk path) into a fresh
SQLite store. Prints points/s of both and their ratio.

Target: the store is not the limit. The whole import runs at least half the reader's own rate
(ratio >= 0.5), so the time an import takes is the reading of the source tool's files.

Measured on the 2-core development machine shared with other jobs (load average about 5),
10 keys x 100,000 steps: TensorBoard read alone 70,049 points/s, whole import 48,682 (ratio
0.69); W&B read alone 63,959, whole import 39,737 (0.62). The figures move with the load; the
ratio is the one that counts.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# --- defaults ------------------------------------------------------------------------------
STEPS = 100_000  # 10 keys x 100,000 steps = 1,000,000 points
KEYS = 10  # as a training loop that logs loss, accuracy, lr, ...
TARGET_RATIO = 0.5  # whole import's points/s over the reader's own
CACHE = Path(tempfile.gettempdir()) / "agentnn-bench-sources"  # kept between runs of the bench
DONE_MARKER = "complete"  # written after the writer closed: a half-written source is redone
WALL_START = 1_700_000_000.0  # the logs' wall time of step 0 (seconds); one step per 10 ms


def make_tensorboard_source(n_steps: int = STEPS, n_keys: int = KEYS,
                            folder: Path = CACHE) -> Path:
    """A TensorBoard log folder with one run of ``n_keys`` scalars over ``n_steps`` steps,
    written by torch's SummaryWriter on the first call, reused after."""
    source = folder / f"tensorboard-{n_keys}x{n_steps}"
    if (source / DONE_MARKER).exists():
        return source
    from torch.utils.tensorboard import SummaryWriter

    run = source / "run"
    for old in run.glob("events.out.tfevents.*"):
        old.unlink()
    writer = SummaryWriter(str(run), max_queue=10_000, flush_secs=600)
    for step in range(n_steps):
        walltime = WALL_START + step / 100
        for key in range(n_keys):
            writer.add_scalar(f"metric_{key}", step * 0.001 + key, step, walltime=walltime)
    writer.close()
    (source / DONE_MARKER).write_text("")
    return source


def make_wandb_source(n_steps: int = STEPS, n_keys: int = KEYS) -> Path:
    """The W&B offline run of ``bench/wandb_source.py`` (its own cache and writer)."""
    from wandb_source import make_wandb_source as make

    return make(n_steps, n_keys)


def tensorboard_reader() -> Any:
    from agentnn.mlflow_integration.importing.tensorboard import TensorBoardReader

    return TensorBoardReader()


def wandb_reader() -> Any:
    from agentnn.mlflow_integration.importing.wandb import WandbReader

    return WandbReader()


# (name, make the source folder, make its reader); a new source is one more line here.
SOURCES: list[tuple[str, Callable[[int, int], Path], Callable[[], Any]]] = [
    ("tensorboard", make_tensorboard_source, tensorboard_reader),
    ("wandb", make_wandb_source, wandb_reader),
]


def read_alone(reader: Any, source: Path) -> tuple[int, float]:
    """Every run of the source read whole, nothing written: (points, seconds)."""
    started = time.perf_counter()
    points = sum(run.points for run in reader.runs(source, None))
    return points, time.perf_counter() - started


def whole_import(source: Path) -> tuple[int, float]:
    """The import into a fresh SQLite store (made before the clock starts): (points, seconds)."""
    from agentnn.mlflow_integration.importing.run import import_sources
    from agentnn.mlflow_integration.store.client import Store

    with tempfile.TemporaryDirectory() as folder:
        store = Store.resolve(f"sqlite:///{Path(folder) / 'mlflow.db'}")
        store.client()  # the store's schema is not part of an import
        started = time.perf_counter()
        results = import_sources([source], store)
        seconds = time.perf_counter() - started
    failed = [r.error for r in results if r.error]
    if failed:
        raise SystemExit(f"import failed: {failed[0]}")
    return sum(r.points for r in results), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--keys", type=int, default=KEYS)
    parser.add_argument("--only", choices=[name for name, _, _ in SOURCES], default=None)
    args = parser.parse_args()

    rows = []
    for name, make_source, make_reader in SOURCES:
        if args.only and name != args.only:
            continue
        started = time.perf_counter()
        source = make_source(args.steps, args.keys)
        print(f"{name}: {source} ({time.perf_counter() - started:.1f} s to write or find)",
              flush=True)
        points, read_s = read_alone(make_reader(), source)
        imported, import_s = whole_import(source)
        rows.append((name, points, points / read_s, imported, imported / import_s,
                     (imported / import_s) / (points / read_s)))

    print(f"\n{'source':<12} {'points':>10} {'read alone':>14} {'whole import':>14} "
          f"{'ratio':>6}  target >= {TARGET_RATIO}")
    for name, points, read_rate, imported, import_rate, ratio in rows:
        mark = "ok" if ratio >= TARGET_RATIO else "BELOW TARGET"
        print(f"{name:<12} {points:>10,} {read_rate:>10,.0f} p/s {import_rate:>10,.0f} p/s "
              f"{ratio:>6.2f}  {mark}" + ("" if imported == points else
                                           f" (imported {imported:,} of {points:,})"))


if __name__ == "__main__":
    main()
