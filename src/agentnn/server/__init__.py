"""The agentnn app for ``mlflow server --app-name agentnn``: bulk ingest and fast reads beside
MLflow's REST API, under MLflow's own basic auth.

Why: through MLflow's REST API a server costs a request (and, with basic auth, a password check)
per 1,000 values, so a team server is no faster than MLflow. This app takes a run's journal
chunks whole and writes them with the writer's native bulk path; clients that find no such app
(a stock server) use MLflow's REST API as before.

Modules:

- ``app``: :func:`~.app.create_app`, the factory registered in the ``mlflow.app`` entry-point
  group; composes MLflow's basic-auth app when auth is configured
  (:func:`agentnn.config.server_auth`), plain MLflow otherwise;
- ``api``: the Flask blueprint of the agentnn routes (capabilities, ingest) and the JSON form
  of their errors;
- ``ingest``: one request's journal chunks checked and written in one transaction;
- ``permissions``: the caller's permission on an experiment or run, checked with MLflow's auth
  store (:func:`~.permissions.require`, :func:`~.permissions.require_run`);
- ``reads`` (when present): the read routes, a blueprint named ``blueprint``; ``read_queries``:
  the SQL behind them, fenced by schema revision like the SDK's direct SQLite reader.

Every route lives under :data:`agentnn.mlflow_integration.journal.transfer.API_PREFIX`
(``/agentnn/api/v1``); docs/team-server.md describes them.

Imports: Flask and MLflow's server (lazily where a module is imported by ``mlflow server``'s
command itself), ``mlflow_integration`` (the journal's wire format, the writer's native bulk
path), :mod:`agentnn.config` and :mod:`agentnn.errors`, and of the SDK only what
:mod:`agentnn.sdk` exports for the reads (its search subset and downsampling, so both answer
alike); never the CLI, the trainers, the managers or torch. Nothing in agentnn imports this
package: only ``mlflow server`` does.
"""
