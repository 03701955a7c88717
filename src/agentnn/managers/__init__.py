"""Runtime model loading, where every load is a tracked run.

- ``model_manager``: the runtime :class:`~agentnn.managers.model_manager.ModelManager`
  (load by name, alias or URI; route tasks to agents), each load a run in ``model_management``;
- ``builders``: the plain MLP builder registered as ``"mlp"`` in the model builder registry.

Imports: :mod:`agentnn.mlflow_integration` (the tracker, the one model loader, the builder
registry), :mod:`agentnn.data` (route inputs), :mod:`agentnn.errors`, and, as the one exception
to the layering, :mod:`agentnn.nn_models.training` for the MLP the trainers share (named in
pyproject.toml's import contract); never the SDK or the CLI. MLflow and torch load on first use,
except in ``builders``, which only a model load imports.
"""
