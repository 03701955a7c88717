"""Architecture search for the router on Optuna, experiment ``architecture_optimization``.

Why a search: the best depth, widths, dropout, activation and learning rate for a router depend
on the data (how many agents, how noisy the logs are), and guessing them wastes training runs.
This trainer runs an Optuna study: a TPE sampler proposes each trial's architecture, a median
pruner stops trials whose per-epoch validation loss is hopeless, and while a trial trains it is
reshaped when validation stalls: it grows (wider hidden layers) when it underfits and shrinks
(drops its weakest units) when it overfits, keeping what it learned and its optimiser state.

The study lives in an Optuna storage (a SQLite file beside the tracking store by default,
PostgreSQL for several machines), so a search spreads over processes and machines and resumes
after an interruption. MLflow sees one parent run per study (tag ``agentnn.study``) and one
nested child run per trial (tags ``agentnn.trial`` and ``agentnn.trial_state``: complete, pruned
or failed). The parent holds the leaderboard (``leaderboard.json``/``.csv``), the best
architecture (``best_architecture.json``) and the best trial's weights as a model in the safe
format, registered with ``register_as``.

Run example::

    from agentnn.data import load_dataset            # digits or an interaction log
    from agentnn.nn_models.dynamic_architecture import ArchitectureSearchConfig, train

    config = ArchitectureSearchConfig(n_trials=8, epochs=6, seed=7)
    result = train(config, load_dataset("logs.jsonl"), workers=2, register_as="agent-router")
    print(result.run_id, result.best_metrics["val_acc"])

or ``agentnn train architecture --data logs.jsonl --trials 8 --workers 2``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from agentnn.errors import SearchFailedError, TrainerConfigError
from agentnn.nn_models.search import study as search_study
from agentnn.nn_models.search.config import ArchitectureSearchConfig
from agentnn.nn_models.search.leaderboard import leaderboard_rows, log_leaderboard
from agentnn.nn_models.search.network import build_model
from agentnn.nn_models.search.objective import (
    TRIAL_MODEL_DIR,
    TRIAL_SPEC,
    TRIAL_WEIGHTS,
    WORKER_SEED_STRIDE,
    SearchContext,
    make_pruner,
    make_sampler,
    optimize,
    score,
    study_key,
)
from agentnn.nn_models.search.workers import WorkerJob, join_workers, spawn_worker
from agentnn.nn_models.training.configs import (
    JSONDict,
    check_config,
    config_dict,
    flatten_config,
    log_data_params,
)
from agentnn.nn_models.training.data_prep import PreparedSplits, prepare_data
from agentnn.nn_models.training.devices import (
    resolve_device,
)
from agentnn.nn_models.training.epochs import (
    EpochCallback,
    seed_everything,
)
from agentnn.nn_models.training.results import (
    TrainResult,
    experiment_for,
    log_best_model,
    open_tracker,
)

if TYPE_CHECKING:
    import optuna
    import torch

    from agentnn.data.datasets import LabelledDataset
    from agentnn.mlflow_integration import ExperimentTracker, TrackedRun

EXPERIMENT = "architecture_optimization"
BUILDER = "agentnn.nn_models.dynamic_architecture:build_model"


# --- the study ---------------------------------------------------------------------------------


def train(
    config: ArchitectureSearchConfig | JSONDict | None,
    data: LabelledDataset,
    *,
    tracker: ExperimentTracker | None = None,
    register_as: str | None = None,
    study: str | None = None,
    storage: str | None = None,
    workers: int = 1,
    resume_from: str | os.PathLike[str] | None = None,
    on_epoch: EpochCallback | None = None,
    on_trial: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Run ``n_trials`` trials of the study; log the leaderboard and the best model.

    ``study``/``storage`` name the Optuna study (default: a name derived from the search
    space and data, in a SQLite file beside the tracking store); a study that exists is
    joined, so an interrupted search resumes by running the same call again. ``workers``
    processes on this machine share the ``n_trials`` budget. ``on_epoch(epoch, metrics)``
    sees the epochs of the trials this process trains (``metrics["trial"]`` is the trial
    number); ``on_trial(done, metrics)`` counts the trials of this call as they finish.
    Bad config or data raise :class:`TrainerConfigError`, an empty ``study`` or a ``storage``
    whose folder does not exist :class:`InvalidArgumentError`, before anything is created.
    """
    import uuid

    config = check_config(config, ArchitectureSearchConfig)
    if resume_from is not None:
        raise TrainerConfigError(
            "the architecture search resumes from its study, not a checkpoint: run it again "
            "with the same --study and --storage"
        )
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise TrainerConfigError(f"workers must be a whole number >= 1, got {workers!r}")
    if study is not None:
        search_study.check_study_name(study)
    if storage is not None:
        search_study.check_storage(storage)
    prepared = prepare_data(data)
    device = resolve_device(config.device)
    tracker = open_tracker(tracker, experiment_for(EXPERIMENT, prepared.params))
    study_name = study or search_study.default_study_name(study_key(config), prepared.params)
    storage_url = storage or search_study.default_storage(tracker.tracking_uri,
                                                          tracker.journal_dir)
    rdb = search_study.open_storage(storage_url)
    seed_everything(config.seed)
    optuna_study, created = search_study.open_study(
        study_name, rdb, make_sampler(config, config.seed), make_pruner(config))
    if not created:  # joining: sample from a seed no other process of the study uses
        offset = len(optuna_study.trials) + 1
        optuna_study.sampler = make_sampler(config, config.seed + offset * WORKER_SEED_STRIDE)
    search_study.recover_interrupted(optuna_study, tracker.client)
    parent_id = None
    if not created:
        parent_id = (search_study.wait_for_parent_run(optuna_study)
                     or search_study.find_parent_run(tracker.client, tracker.experiment_id,
                                                     study_name))
    command_id = uuid.uuid4().hex
    with tracker.start_run(run_id=parent_id, run_name=study_name if parent_id is None else None,
                           tags={search_study.STUDY_TAG: study_name}) as parent:
        if parent_id is None:
            parent.log_params({**flatten_config(config), "study": study_name,
                               "storage": _masked(storage_url), "sampler": "tpe"})
            log_data_params(parent, prepared.params)
            optuna_study.set_user_attr(search_study.PARENT_RUN_ATTR, parent.run_id)
        ctx = SearchContext(config, prepared.to(device), tracker, parent, study_name,
                             command_id, on_epoch)
        progress = _progress_callback(on_trial, command_id)
        with tempfile.TemporaryDirectory(prefix="agentnn-search-job-") as job_dir:
            processes = []
            if workers > 1:
                WorkerJob(config_dict(config), prepared.n_classes, prepared.params,
                           prepared.metadata, tracker.experiment_name, tracker.tracking_uri,
                           str(tracker.journal_dir), storage_url, study_name, parent.run_id,
                           command_id, workers).write(Path(job_dir), prepared)
                processes = [spawn_worker(Path(job_dir), index) for index in range(1, workers)]
            finished = False
            try:
                optimize(optuna_study, ctx,
                          search_study.worker_share(config.n_trials, workers, 0), progress)
                finished = True
            finally:
                failed = join_workers(processes, stop=not finished)
        if failed:
            raise SearchFailedError(study_name, (
                f"{len(failed)} of {workers} search workers failed (exit codes "
                f"{', '.join(map(str, failed))}); the trials they finished are kept in the study"))
        if progress is not None:
            progress(optuna_study, None)
        return _finish(parent, tracker, optuna_study, ctx.data, config, register_as,
                       study_name)


def _masked(url: str) -> str:
    from agentnn.config import mask_uri

    return mask_uri(url)


def _progress_callback(
    on_trial: Callable[[int, dict[str, float]], None] | None, command_id: str,
) -> Callable[[optuna.Study, optuna.trial.FrozenTrial | None], None] | None:
    """Optuna callback: how many trials of this command (all its workers) have finished."""
    if on_trial is None:
        return None

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial | None) -> None:
        from optuna.trial import TrialState

        finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        done = sum(1 for item in study.get_trials(deepcopy=False, states=finished)
                   if item.user_attrs.get(search_study.COMMAND_ATTR) == command_id)
        row = dict(trial.user_attrs.get(search_study.ROW_ATTR) or {}) if trial else {}
        on_trial(done, {key: value for key, value in row.items()
                        if key in ("val_loss", "val_acc")})

    return callback


# --- the end of a command: leaderboard and best model on the parent ----------------------------


def _finish(parent: TrackedRun, tracker: ExperimentTracker, study: optuna.Study,
            data: PreparedSplits, config: ArchitectureSearchConfig, register_as: str | None,
            study_name: str) -> TrainResult:
    """Leaderboard, best architecture, test score and the best model, all on the parent run.

    The study may hold trials of other processes and earlier commands; the leaderboard and
    the best model cover them all. The model is logged again only when the best trial changed
    (or a registration was asked for that has not been made).
    """
    rows = leaderboard_rows(study.get_trials(deepcopy=False))
    complete = [row for row in rows if row["state"] == "complete"]
    counts = {state: sum(1 for row in rows if row["state"] == state)
              for state in ("complete", "pruned", "failed")}
    if not complete:
        raise SearchFailedError(study_name, (
            f"no trial completed ({counts['pruned']} pruned, {counts['failed']} failed); "
            "nothing to log as the best model"))
    best = complete[0]
    model, spec, best_epoch, best_metrics = _load_trial_model(tracker, best["run_id"])
    model.to(data.train.x.device)
    test_loss, test_acc = score(model, data.test)
    summary = {"best_val_loss": best["val_loss"], "best_val_acc": best["val_acc"],
               "test_loss": test_loss, "test_acc": test_acc,
               **{f"trials_{state}": float(count) for state, count in counts.items()}}
    parent.log_metrics(summary, step=len(rows))
    log_leaderboard(parent, rows, spec)
    tags = tracker.client.get_run(parent.run_id).data.tags
    parent.set_tags({"agentnn.best_trial": best["trial"], "agentnn.best_child_run_id":
                     best["run_id"], "agentnn.best_hidden_sizes":
                     ",".join(map(str, spec["hidden_sizes"])), "agentnn.best_dropout":
                     spec["dropout"], "agentnn.best_activation": spec["activation"],
                     "agentnn.best_learning_rate": best["learning_rate"]})
    already = tags.get("agentnn.best_model_trial") == str(best["trial"])
    registered = tags.get("agentnn.registered_as") == (register_as or "")
    model_uri, version = tags.get("agentnn.model_uri"), None
    if not (already and registered):
        model_uri, version = log_best_model(
            model.cpu(), builder=BUILDER, config=spec,
            input_example=data.val.x[:2].cpu().numpy(), register_as=register_as,
            metadata={**data.metadata, "leaderboard_rank": 1, "study": study_name},
        )
        parent.set_tags({"agentnn.best_model_trial": best["trial"],
                         "agentnn.registered_as": register_as or ""})
    return TrainResult(
        run_id=parent.run_id, best_metrics={**best_metrics, "test_loss": test_loss,
                                            "test_acc": test_acc, "best_val_loss":
                                            best["val_loss"]},
        model_uri=model_uri, registered_version=version,
        epochs_run=sum(1 for _ in rows) * config.epochs, experiment_id=tracker.experiment_id,
        best_epoch=best_epoch, study=study_name,
    )


def _load_trial_model(
    tracker: ExperimentTracker, run_id: str,
) -> tuple[torch.nn.Module, JSONDict, int, dict[str, float]]:
    """A trial's best weights from its child run (any process or machine may have logged them)."""
    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory(prefix="agentnn-best-") as tmp:
        folder = Path(tracker.client.download_artifacts(run_id, TRIAL_MODEL_DIR, tmp))
        saved = json.loads((folder / TRIAL_SPEC).read_text(encoding="utf-8"))
        model = build_model(saved["spec"])
        model.load_state_dict(load_file(str(folder / TRIAL_WEIGHTS)))
    return model, saved["spec"], int(saved["best_epoch"]), dict(saved["metrics"])
