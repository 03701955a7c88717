"""The caller's permission on an experiment or a run, decided by MLflow's own auth store.

Why here and not in MLflow's ``before_request``: basic auth authorizes a request by its path,
and it knows none of agentnn's paths. It still authenticates every request to them (a missing or
wrong password gets its 401 before any route runs), and each agentnn route then asks, once,
with the same rules MLflow's own validators apply (grants, the configured default permission,
roles, admins pass). So a READ-only user gets 403 from the ingest route exactly as from
``log_batch``.

How a route uses it (routes of ``api`` and ``reads`` alike)::

    from agentnn.server.permissions import require, require_run

    require(experiment_id, "read")        # answers 403 (JSON) and ends the request if not allowed
    require_run(run_id, "update")         # the run's experiment: EDIT (or a run grant) to write
    require_model(name)                   # READ on a registered model

Actions are MLflow's: ``"read"`` (READ and above) and ``"update"`` (EDIT and above). On a server
without auth both pass. A run that does not exist is refused like one the caller may not touch
(403, as MLflow does), so the answer tells nobody which run ids exist.
"""

from __future__ import annotations

from typing import Literal

from flask import Flask, abort, current_app, g, jsonify

__all__ = ["AUTH_ENABLED", "Action", "auth_enabled", "require", "require_model",
           "require_run"]

Action = Literal["read", "update"]
AUTH_ENABLED = "AGENTNN_BASIC_AUTH"  # the Flask app's config key, set by app.create_app


def auth_enabled(app: Flask | None = None) -> bool:
    """True when the app was composed with MLflow's basic auth."""
    return bool((app or current_app).config.get(AUTH_ENABLED, False))


def require(experiment_id: str, action: Action) -> None:
    """End the request with 403 unless the caller may ``action`` the experiment."""
    if not auth_enabled() or _caller_is_admin():
        return
    from mlflow.server import auth
    from mlflow.server.auth.permissions import RESOURCE_TYPE_EXPERIMENT
    from mlflow.server.auth.requirements import Requirement

    anchor = (RESOURCE_TYPE_EXPERIMENT, experiment_id)
    if not auth.authorize(_caller(), anchor,
                          [Requirement(RESOURCE_TYPE_EXPERIMENT, experiment_id, action)]):
        _forbid(f"permission denied: {action} on experiment {experiment_id}")


def require_run(run_id: str, action: Action) -> None:
    """End the request with 403 unless the caller may ``action`` the run (MLflow's rule for
    runs: READ on its experiment, and ``action`` by a run grant or on the experiment)."""
    if not auth_enabled() or _caller_is_admin():
        return
    from mlflow.server import auth

    resolved = auth._run_requirement(run_id, action)
    if resolved is None or not auth.authorize(_caller(), *resolved):
        _forbid(f"permission denied: {action} on run {run_id}")


def require_model(name: str) -> None:
    """End the request with 403 unless the caller may read the registered model (MLflow's
    rules for registered models: grants, then the configured default)."""
    if not auth_enabled() or _caller_is_admin():
        return
    from mlflow.server import auth

    if not auth._get_registered_model_permission(name).can_read:
        _forbid(f"permission denied: read on registered model {name}")


def _caller() -> str:
    """The user basic auth authenticated for this request (set before any route runs)."""
    return str(g.mlflow_authenticated_user)


def _caller_is_admin() -> bool:
    from mlflow.server import auth

    return bool(auth.store.get_user(_caller()).is_admin)


def _forbid(message: str) -> None:
    response = jsonify(error_code="PERMISSION_DENIED", message=message)
    response.status_code = 403
    abort(response)
