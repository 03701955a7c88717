"""Runs brought in from other trackers: TensorBoard logs, W&B offline runs, trackio projects.

Each source has a reader (one module each) that turns what the other tool wrote into
:class:`~agentnn.mlflow_integration.importing.source.SourceRun` records, using that tool's own
maintained reader (TensorBoard's event loader, the ``wandb`` package's ``.wandb`` reader,
trackio's SQLite files), never a hand-written parser of their formats. One writer puts every
``SourceRun`` into the resolved store through the writer's native bulk path on SQL stores
(``log_batch`` elsewhere), tagged ``agentnn.imported_from``, so importing the same source twice
changes nothing.

Imports: the store layer, the writer's bulk path, :mod:`agentnn.config`, :mod:`agentnn.errors`;
the readers' packages (``tensorboard``, ``wandb``, ``trackio``) only inside the reader that
needs them, as optional extras. Nothing below imports this package.
"""
