"""What every trainer shares: seeding, config checks, timing, early stopping, LR schedules,
atomic checkpoints with resume, data params and the result of a training run.

A trainer module uses these pieces in the same order, so all five read alike::

    config = check_config(config, MyConfig)            # 1. bad values raise before any run
    require_samples(len(train_x), MIN_TRAIN_SAMPLES)   #    ...and so do too-small data sets
    checkpoint = load_checkpoint(resume_from)          # 2. resume: same config, same run id
    seed_everything(config.seed)                       # 3. same seed, same metrics on CPU
    with tracker.start_run(run_id=...) as run:         # 4. one run in the trainer's experiment
        run.log_params(flatten_config(config))         #    the whole config, flattened
        log_data_params(run, data_params)              #    size, content hash, featuriser
        for epoch in range(start_epoch, config.epochs + 1):
            with EpochTimer(n_samples) as timer:       # 5. epoch time and samples/s
                ...                                    #    run.log_metrics(..., step=global_step)
            run.log_metrics({..., **timer.metrics(), "lr": current_lr(optimizer)}, step=epoch)
            checkpoints.save(Checkpoint(...))          # 6. atomic, keeps the last N
            if stopper.update(val_loss): ...           # 7. early stopping
        logged = log_best_model(...)                   # 8. safe format, optional registration
    return TrainResult(...)

The supervised trainers get all of this from :func:`agentnn.nn_models.loop.fit`.

Metric names are shared too: ``train_loss``/``val_loss`` and ``train_<m>``/``val_<m>`` per epoch
at ``step=epoch`` (1-based), ``step_loss`` per optimiser step at ``step=global_step``, plus
``lr``, ``epoch_time_s`` and ``samples_per_s`` per epoch.

The pieces live in one module per job (``configs``, ``epochs``, ``checkpoints``, ``results``);
this module re-exports them so trainers and older code import from one place. Nothing here
imports torch or MLflow at module level.
"""

from __future__ import annotations

from agentnn.errors import TrainerConfigError
from agentnn.nn_models.checkpoints import (
    CHECKPOINT_PREFIX,
    CHECKPOINT_SUFFIX,
    DEFAULT_CHECKPOINT_ROOT,
    DEFAULT_KEEP_CHECKPOINTS,
    Checkpoint,
    CheckpointManager,
    check_resume_config,
    checkpoint_dir,
    detached_copy,
    list_checkpoints,
    load_checkpoint,
)
from agentnn.nn_models.configs import (
    SHARED_RENAMES,
    ConfigT,
    accept_old_names,
    check_choice,
    check_config,
    check_positive,
    check_range,
    config_dict,
    config_from_mapping,
    flatten_config,
    log_data_params,
    require_features,
    require_samples,
)
from agentnn.nn_models.epochs import (
    SCHEDULERS,
    EarlyStopping,
    EpochCallback,
    EpochTimer,
    batch_order,
    current_lr,
    make_scheduler,
    seed_everything,
    step_scheduler,
)
from agentnn.nn_models.results import (
    MODEL_PIP_REQUIREMENTS,
    TrainResult,
    copy_state,
    log_best_model,
    open_tracker,
)

__all__ = [
    "CHECKPOINT_PREFIX", "CHECKPOINT_SUFFIX", "DEFAULT_CHECKPOINT_ROOT",
    "DEFAULT_KEEP_CHECKPOINTS", "MODEL_PIP_REQUIREMENTS", "SCHEDULERS", "SHARED_RENAMES",
    "Checkpoint", "CheckpointManager", "ConfigT", "EarlyStopping", "EpochCallback", "EpochTimer",
    "TrainResult", "TrainerConfigError", "accept_old_names", "batch_order", "check_choice",
    "check_config", "check_positive", "check_range", "check_resume_config", "checkpoint_dir",
    "config_dict", "config_from_mapping", "copy_state", "current_lr", "detached_copy",
    "flatten_config",
    "list_checkpoints", "load_checkpoint", "log_best_model",
    "log_data_params", "make_scheduler", "open_tracker", "require_features",
    "require_samples", "seed_everything", "step_scheduler",
]
