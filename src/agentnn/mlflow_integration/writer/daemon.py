"""The writer process's entry point: imports MLflow lean, lowers its priority, runs the loop.

Started by :class:`~agentnn.mlflow_integration.writer.owner.WriterProcess` (to take over at a
training process's exit) or by hand::

    python -m agentnn.mlflow_integration.writer <journal_dir> [--once]

Its lines go to ``<journal_dir>/writer.log``, one timestamped line each.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
from pathlib import Path

from agentnn.mlflow_integration.writer.loop import (
    LOG_FORMAT,
    WAKE_SIGNAL,
    WRITER_NICENESS,
    forward_all,
    log_to_file,
)

SKIPPED_IMPORTS = ("pandas",)


def import_mlflow() -> None:
    """Import MLflow for the writer without the modules it never uses (its start-up cost).

    Importing MLflow is most of a writer's start-up CPU (seconds on a loaded machine), and a
    writer at the lowest priority pays it while training holds the cores, so it shows at the end
    of a run. pandas alone is about a third of it, imported by MLflow's dataset registry, which
    guards it as optional: it is kept out while MLflow's package loads (and importable again
    after). Should a future MLflow need it at import time, MLflow is imported in full.
    """
    if "mlflow" in sys.modules:
        return
    blocked = [name for name in SKIPPED_IMPORTS if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # "import pandas" -> ImportError
    try:
        import mlflow
    except ImportError:
        for name in [n for n in sys.modules if n == "mlflow" or n.startswith("mlflow.")]:
            del sys.modules[name]
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    import mlflow  # noqa: F401 - in full, if the lean import failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Forward agentnn run journals to MLflow.")
    parser.add_argument("journal_dir", type=Path)
    parser.add_argument("--parent", type=int, default=None, help="exit when this process is gone")
    parser.add_argument("--once", action="store_true", help="send what is there, then exit")
    parser.add_argument("--wait-for-lock", action="store_true",
                        help="wait for the folder's current writer to let go, then take over")
    args = parser.parse_args(argv)
    # Before the folder's lock is taken (the pid in it tells the owner it may wake us): from
    # here on the wake-up signal waits for sigtimedwait instead of ending the process.
    signal.pthread_sigmask(signal.SIG_BLOCK, {WAKE_SIGNAL})
    if not args.once:
        os.nice(WRITER_NICENESS)
    from agentnn import config

    # Its stdout and stderr go to writer.log: no "View run … at" line per run (lines there are
    # the writer's own, with their time), unless the user set MLflow's switch themselves.
    os.environ.setdefault(config.MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT, "true")
    # What other libraries log, and Python's warnings, get the writer's timestamped format too
    logging.basicConfig(format=LOG_FORMAT)
    logging.captureWarnings(True)
    import_mlflow()
    gc.freeze()  # MLflow's modules live as long as the writer: kept out of full collections
    from agentnn.errors import ConfigError

    try:  # settings of the training process that started it (its cwd, env and .env)
        give_up = float(config.resolve().writer_give_up.value)
    except ConfigError:
        give_up = config.DEFAULT_WRITER_GIVE_UP
    with log_to_file(args.journal_dir):  # the owner sends stdout and stderr (a crash) there too
        forward_all(args.journal_dir, parent_pid=args.parent, once=args.once,
                    retry_limit=give_up, wait_for_lock=args.wait_for_lock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
