"""A large W&B offline run for the import benchmark, written once by the real ``wandb`` package.

    .venv/bin/python bench/wandb_source.py [--steps 100000] [--keys 10]

As a script: writes (or reuses) the run, then prints the reader's own read time and the whole
import's points/s into a fresh SQLite store. As a module: :func:`make_wandb_source` for a bench
that compares sources. Needs ``pip install 'agentnn[import]'``; W&B runs offline, no network.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

# --- defaults ------------------------------------------------------------------------------
STEPS = 100_000  # 10 keys x 100,000 steps = 1,000,000 points; wandb writes them in about 25 s
KEYS = 10  # as a training loop that logs loss, accuracy, lr, ...
CACHE = Path(tempfile.gettempdir()) / "agentnn-bench-sources"  # kept between runs of the bench
DONE_MARKER = "complete"  # written after wandb.finish: a half-written run is written again


def make_wandb_source(n_steps: int = STEPS, n_keys: int = KEYS,
                      folder: Path = CACHE) -> Path:
    """The folder holding one offline run of ``n_keys`` metrics over ``n_steps`` steps
    (``<folder>/wandb-<keys>x<steps>``, with its ``wandb/offline-run-*`` inside); written on the
    first call, reused after."""
    source = folder / f"wandb-{n_keys}x{n_steps}"
    if (source / DONE_MARKER).exists():
        return source
    source.mkdir(parents=True, exist_ok=True)
    for name, value in (("WANDB_MODE", "offline"), ("WANDB_SILENT", "true"),
                        ("WANDB_CONSOLE", "off"), ("WANDB_DIR", str(source))):
        os.environ.setdefault(name, value)
    import wandb

    wandb.init(mode="offline", project="bench", dir=source,
               settings=wandb.Settings(console="off", x_disable_stats=True))
    for step in range(n_steps):
        wandb.log({f"metric_{key}": step * 0.001 + key for key in range(n_keys)}, step=step)
    wandb.finish()
    wandb.teardown()  # finish returns before wandb-core has written the whole file; this waits
    (source / DONE_MARKER).write_text("")
    return source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--keys", type=int, default=KEYS)
    args = parser.parse_args()

    from agentnn.mlflow_integration.importing.wandb import WandbReader
    from agentnn.sdk.nn_models import ModelManager

    started = time.perf_counter()
    source = make_wandb_source(args.steps, args.keys)
    print(f"source: {source} ({time.perf_counter() - started:.1f} s to write or find)")

    started = time.perf_counter()
    (run,) = WandbReader().runs(source, None)
    read_s = time.perf_counter() - started
    print(f"read alone:   {run.points:>9,} points in {read_s:6.1f} s "
          f"= {run.points / read_s:>9,.0f} points/s")

    with tempfile.TemporaryDirectory() as store_dir:
        manager = ModelManager(f"sqlite:///{Path(store_dir) / 'store.db'}")
        started = time.perf_counter()
        (result,) = manager.import_runs([source])
        import_s = time.perf_counter() - started
        manager.close()
    print(f"whole import: {result.points:>9,} points in {import_s:6.1f} s "
          f"= {result.points / import_s:>9,.0f} points/s")


if __name__ == "__main__":
    main()
