"""The SDK: plain-data access to experiments, runs, metric histories and registered models.

- ``nn_models``: the SDK :class:`~agentnn.sdk.nn_models.ModelManager`, the public surface; every
  method returns dataclasses with ``to_dict()``, which the ``agentnn model`` command renders;
- private helpers behind it: ``_records`` (the plain data), ``_sqlite_reader`` and ``_search``
  (read-only answers straight from a SQLite store, without importing MLflow),
  ``_mlflow_reader`` (the same answers through ``MlflowClient`` on any store), ``_registry``,
  ``_downsample``, ``_watch`` and ``_journal_view`` (points still in a local journal), ``_plot``,
  ``_predict``, ``_ui``, ``_migrate``.

Imports: :mod:`agentnn.mlflow_integration` (store, models, offline, run queries, journal format),
:mod:`agentnn.config`, :mod:`agentnn.errors`; never the CLI, the trainers or the runtime
managers. MLflow, torch and matplotlib are imported inside the functions that need them.
"""

# What the agentnn app for `mlflow server` (agentnn.server) shares with the SDK's readers, so
# its answers follow the same search subset and the same downsampling: light modules, no MLflow.
from agentnn.sdk._downsample import downsample
from agentnn.sdk._records import MetricPoint
from agentnn.sdk._search import (
    ATTRIBUTE,
    ATTRIBUTE_COLUMNS,
    METRIC,
    PARAM,
    Comparison,
    OrderBy,
    parse_filter,
    parse_order_by,
)

__all__ = [
    "ATTRIBUTE",
    "ATTRIBUTE_COLUMNS",
    "METRIC",
    "PARAM",
    "Comparison",
    "MetricPoint",
    "OrderBy",
    "downsample",
    "parse_filter",
    "parse_order_by",
]
