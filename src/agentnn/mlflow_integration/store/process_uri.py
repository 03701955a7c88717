"""MLflow's own tracking URI for the process, set to agentnn's store without importing MLflow.

A user who opens the SDK and then calls ``mlflow.search_runs()`` in the same process expects
the same runs. MLflow 3's default store is ``./mlflow.db``, agentnn's ``./mlruns/mlflow.db``,
so MLflow must be told; but importing MLflow costs seconds that the SDK's reads avoid. So when
MLflow is not imported yet, the URI is set the moment something imports it: a one-shot import
hook runs :func:`agentnn.config.point_mlflow_at` right after the ``mlflow`` package loads.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Sequence
from types import ModuleType

from agentnn import config

MLFLOW = "mlflow"

_lock = threading.Lock()
_pending: str | None = None  # the URI to set when MLflow is imported; the latest call wins
_hook: _PointWhenImported | None = None


def point_mlflow(uri: str) -> None:
    """Make ``uri`` MLflow's tracking URI in this process: now if MLflow is imported, else
    as soon as it is."""
    global _pending, _hook
    if MLFLOW in sys.modules:
        config.point_mlflow_at(uri)
        return
    with _lock:
        _pending = uri
        if _hook is None:
            _hook = _PointWhenImported()
            sys.meta_path.insert(0, _hook)


def _imported() -> None:
    global _hook
    with _lock:
        uri = _pending
        _hook = None
    if uri is not None:
        config.point_mlflow_at(uri)


class _PointWhenImported(importlib.abc.MetaPathFinder):
    """Finds ``mlflow`` as the path finder would and sets the URI once its module has run."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != MLFLOW:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)  # one shot
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            _imported_later(self)
            return spec
        run_module = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run_module(module)
            _imported()

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _imported_later(hook: _PointWhenImported) -> None:
    """A loader this hook cannot wrap: leave the URI to the next :func:`point_mlflow` call."""
    global _hook
    with _lock:
        if _hook is hook:
            _hook = None
