"""``mlflow server --app-name agentnn``: MLflow's server with the agentnn routes, under MLflow's
basic auth when it is configured.

Registered in the ``mlflow.app`` entry-point group (pyproject.toml). ``mlflow server`` imports
this module in its own process to look at :func:`create_app`, so nothing heavy is imported at
module level; each server worker then calls the factory.

Composition, as MLflow's basic-auth app does it: the agentnn blueprints are registered on
MLflow's Flask app first; then, with auth, MLflow's ``create_app`` adds its users, permissions
and admin routes and the authentication of every request (and wraps the Flask app in FastAPI
when the server runs under uvicorn); without auth, the Flask app is wrapped the same way. With
``MLFLOW_BASIC_AUTH_FAIL_CLOSED`` on (MLflow 3.17's default), basic auth denies a non-admin
every route it has no validator for; the agentnn routes are listed as routes that authorize
themselves (they ask :mod:`agentnn.server.permissions`), so they are authenticated by basic auth
and authorized by their own check (tests/server checks a READ-only user reaches them).
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI
    from flask import Flask

__all__ = ["create_app"]

READS_MODULE = "agentnn.server.reads"  # the read routes, when that module is there


def create_app() -> Flask | FastAPI:
    """MLflow's server app with the agentnn routes; basic auth per
    :func:`agentnn.config.server_auth`."""
    from mlflow.environment_variables import _MLFLOW_SGI_NAME
    from mlflow.server import app as flask_app

    from agentnn import config
    from agentnn.mlflow_integration.journal.transfer import API_PREFIX
    from agentnn.server import api, permissions

    with_auth = config.server_auth() == "basic-auth"
    flask_app.config[permissions.AUTH_ENABLED] = with_auth
    _register(flask_app, api.blueprint)
    reads: tuple[str, ...] = ()
    if importlib.util.find_spec(READS_MODULE) is not None:
        reads_module = importlib.import_module(READS_MODULE)
        _register(flask_app, reads_module.blueprint)
        reads = tuple(getattr(reads_module, "READS", ())) or _route_names(
            flask_app, reads_module.blueprint.name)
    flask_app.config[api.READS_KEY] = reads
    if with_auth:
        from mlflow.server import auth

        if API_PREFIX not in auth._KNOWN_UNGATED_ROUTE_MARKERS:
            markers: tuple[str, ...] = (*auth._KNOWN_UNGATED_ROUTE_MARKERS, API_PREFIX)
            auth._KNOWN_UNGATED_ROUTE_MARKERS = markers  # type: ignore[assignment]
        composed: Flask | FastAPI = auth.create_app(flask_app)  # MLflow's, unannotated
        return composed
    if _MLFLOW_SGI_NAME.get() == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        wrapped: FastAPI = create_fastapi_app(flask_app)  # MLflow's, unannotated
        return wrapped
    return flask_app


def _register(flask_app: Flask, blueprint: object) -> None:
    """Register a blueprint once (a factory called twice in one process must not fail)."""
    from flask import Blueprint

    if not isinstance(blueprint, Blueprint):
        raise TypeError(f"{blueprint!r} is not a Flask blueprint")
    if blueprint.name not in flask_app.blueprints:
        flask_app.register_blueprint(blueprint)


def _route_names(flask_app: Flask, blueprint_name: str) -> tuple[str, ...]:
    """The names of a blueprint's routes (its view functions), for the capabilities."""
    prefix = f"{blueprint_name}."
    return tuple(sorted({rule.endpoint.removeprefix(prefix)
                         for rule in flask_app.url_map.iter_rules()
                         if rule.endpoint.startswith(prefix)}))
