"""The trainers, one module each, named as in Agent-NN, and what they share.

- ``advanced_training``, ``dynamic_architecture``, ``multi_task_learning``, ``online_learning``,
  ``training_infrastructure`` (distributed, launched with ``torchrun``): one ``train`` entry
  each, a config dataclass at the top, every value logged through the tracker;
- ``training``: the pieces all five use (configs, data preparation, devices, epochs,
  checkpoints, the supervised loop, the MLP, results and the best model);
- ``search``: the Optuna architecture search behind ``dynamic_architecture``.

Imports: downward only, trainer -> ``search`` -> ``training``, and no trainer imports another;
out of the package: :mod:`agentnn.mlflow_integration` (the tracker and the model format),
:mod:`agentnn.data`, :mod:`agentnn.config`, :mod:`agentnn.errors`; never the SDK, the managers
or the CLI. torch and MLflow are imported inside functions, so listing the trainers is cheap.
"""
