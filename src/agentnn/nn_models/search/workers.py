"""Worker processes that share one study: the job written to a folder, spawned, joined.

Why files and a fresh interpreter (not multiprocessing's spawn): see :class:`WorkerJob`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agentnn.nn_models.search import study as search_study
from agentnn.nn_models.search.config import ArchitectureSearchConfig
from agentnn.nn_models.search.objective import (
    WORKER_SEED_STRIDE,
    SearchContext,
    make_pruner,
    make_sampler,
    optimize,
)
from agentnn.nn_models.training.configs import (
    JSONDict,
    check_config,
)
from agentnn.nn_models.training.data_prep import PreparedSplits, TensorSplit
from agentnn.nn_models.training.devices import (
    resolve_device,
)

if TYPE_CHECKING:

    pass


# --- worker processes --------------------------------------------------------------------------


@dataclass
class WorkerJob:
    """Everything a worker process needs, written to a folder as JSON and one ``.npz``.

    Why files and a fresh interpreter (not multiprocessing's spawn): spawn re-imports the
    caller's ``__main__``, which re-runs a user's script that lacks a main guard.
    """

    config: JSONDict
    n_classes: int
    params: JSONDict
    metadata: JSONDict
    experiment: str
    tracking_uri: str
    journal_dir: str
    storage_url: str
    study_name: str
    parent_run_id: str
    command_id: str
    workers: int

    def write(self, folder: Path, prepared: PreparedSplits) -> None:
        import dataclasses

        import numpy as np

        (folder / "job.json").write_text(json.dumps(dataclasses.asdict(self), default=str),
                                         encoding="utf-8")
        np.savez(folder / "data.npz", **{
            f"{name}_{part}": getattr(split, part).cpu().numpy()
            for name, split in (("train", prepared.train), ("val", prepared.val),
                                ("test", prepared.test)) for part in ("x", "y")})

    @classmethod
    def read(cls, folder: Path) -> tuple[WorkerJob, PreparedSplits]:
        import numpy as np
        import torch

        job = cls(**json.loads((folder / "job.json").read_text(encoding="utf-8")))
        with np.load(folder / "data.npz") as arrays:
            splits = {name: TensorSplit(torch.as_tensor(arrays[f"{name}_x"]),
                                  torch.as_tensor(arrays[f"{name}_y"]))
                      for name in ("train", "val", "test")}
        return job, PreparedSplits(splits["train"], splits["val"], splits["test"], job.n_classes,
                                 job.params, job.metadata)


def spawn_worker(folder: Path, index: int) -> subprocess.Popen[bytes]:
    """``python -m agentnn.nn_models.search.worker <folder> <index>``, in its own group."""
    return subprocess.Popen(
        [sys.executable, "-m", "agentnn.nn_models.search.worker", str(folder), str(index)],
        start_new_session=True,
    )


def join_workers(processes: list[subprocess.Popen[bytes]], *, stop: bool = False) -> list[int]:
    """Wait for every worker (stopping them first when ``stop``); the failed exit codes."""
    import signal

    if stop:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
    failed = []
    for process in processes:
        code = process.wait()
        if code != 0:
            failed.append(code)
    return failed


def run_worker(folder: Path, index: int) -> None:
    """A worker process: join the study and its parent run, run this worker's share."""
    import torch

    from agentnn.mlflow_integration import ExperimentTracker

    job, prepared = WorkerJob.read(folder)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // job.workers))
    config = check_config(job.config, ArchitectureSearchConfig)
    tracker = ExperimentTracker(job.experiment, tracking_uri=job.tracking_uri,
                                journal_dir=job.journal_dir)
    rdb = search_study.open_storage(job.storage_url)
    optuna_study, _ = search_study.open_study(
        job.study_name, rdb, make_sampler(config, config.seed + index * WORKER_SEED_STRIDE),
        make_pruner(config))
    with tracker.start_run(run_id=job.parent_run_id) as parent:
        ctx = SearchContext(config, prepared.to(resolve_device(config.device)),
                             tracker, parent, job.study_name, job.command_id)
        optimize(optuna_study, ctx, search_study.worker_share(config.n_trials, job.workers,
                                                               index), None)
