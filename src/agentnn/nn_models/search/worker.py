"""Entry point of one architecture-search worker process (started by ``dynamic_architecture``).

``python -m agentnn.nn_models.search.worker <job folder> <worker index>``; not meant to be run
by hand: the folder holds the job the launching command wrote.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    import logging

    import optuna

    from agentnn import config
    from agentnn.nn_models.search.workers import run_worker

    # Its output is the launching command's: Optuna's line per trial only under `agentnn -v`.
    optuna.logging.set_verbosity(logging.INFO if config.libraries_verbose() else logging.WARNING)

    folder, index = Path(argv[0]), int(argv[1])
    try:
        run_worker(folder, index)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
