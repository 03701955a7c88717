"""What the five trainers share, one module per job.

- ``configs``: config checks, renamed keys, flattening into params, data params;
- ``data_prep``: a data set's tensors, class count and metadata, checked before any run;
- ``devices``: device choice, mixed precision;
- ``epochs``: seeding, timing, early stopping, learning-rate schedules;
- ``checkpoints``: atomic checkpoints with resume, written in the background;
- ``loop``: the supervised loop (:func:`~agentnn.nn_models.training.loop.fit`) every
  classifier trainer runs;
- ``mlp``: the plain multi-layer perceptron the search and the distributed job build;
- ``results``: a training run's result and the best model logged in the safe format.

A trainer uses these pieces in the same order, so all five read alike::

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

Metric names are shared too: ``train_loss``/``val_loss`` and ``train_<m>``/``val_<m>`` per epoch
at ``step=epoch`` (1-based), ``step_loss`` per optimiser step at ``step=global_step``, plus
``lr``, ``epoch_time_s`` and ``samples_per_s`` per epoch.

Imports: :mod:`agentnn.mlflow_integration` (the tracker, the safe model format, the key checks
of ``run``), :mod:`agentnn.data`, :mod:`agentnn.errors`; never a trainer module or the search.
Nothing here imports torch or MLflow at module level.
"""
