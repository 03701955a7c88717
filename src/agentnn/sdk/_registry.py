"""The model registry through ``MlflowClient``: register, move and remove aliases, list versions.

Promotion is by alias (``agent-router@champion``); MLflow has deprecated stages. A legacy
``models:/name/Production`` URI is still resolved to a version where the store keeps stages.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from agentnn.errors import InputError, NotFoundError, RunHasNoModelError
from agentnn.sdk._mlflow_reader import logged_models_of_run
from agentnn.sdk._records import ModelVersionInfo

MLMODEL_FILE = "MLmodel"
LEGACY_STAGES = ("production", "staging", "archived", "none")
REGISTRATION_WAIT_SECONDS = 300  # MLflow's own default wait for a version to become READY
_STAGE_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<stage>[A-Za-z]+)$")


def _is_missing(error: Exception) -> bool:
    return getattr(error, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")


def require_registered_model(client: Any, name: str) -> Any:
    """The registered model ``name``; NotFoundError naming it when the registry lacks it."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException as error:
        if _is_missing(error):
            raise NotFoundError("registered model", name,
                                "list versions of a known name or register one first") from None
        raise


def find_model_source(client: Any, run_id: str) -> tuple[str, str | None]:
    """(source URI, model id) of the model a run logged, newest first.

    MLflow 3 runs log LoggedModels (found by ``source_run_id``); older runs and other tools
    put an ``MLmodel`` folder among the run's artifacts, usually ``model/``.
    """
    run = client.get_run(run_id)
    models = logged_models_of_run(client, run.info.experiment_id, run_id)
    if models:
        model = models[-1]
        return f"models:/{model.model_id}", model.model_id
    for path in _mlmodel_folders(client, run_id):
        return f"{run.info.artifact_uri.rstrip('/')}/{path}", None
    raise RunHasNoModelError(run_id)


def _mlmodel_folders(client: Any, run_id: str) -> list[str]:
    """Artifact folders of a run holding an MLmodel file: ``model`` first, one level deep."""
    top = client.list_artifacts(run_id)
    if any(info.path == MLMODEL_FILE for info in top):
        return [""]
    folders = sorted((info.path for info in top if info.is_dir), key=lambda p: p != "model")
    return [
        folder for folder in folders
        if any(info.path.endswith(f"/{MLMODEL_FILE}") for info in client.list_artifacts(
            run_id, folder))
    ]


def register(client: Any, run_id: str, name: str, alias: str | None) -> ModelVersionInfo:
    """Register the run's model under ``name`` (created when new); optionally set an alias."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_run(run_id)
    except MlflowException as error:
        if _is_missing(error) or "not found" in str(error).lower():
            raise NotFoundError("run", run_id) from None
        raise
    source, model_id = find_model_source(client, run_id)
    try:
        client.create_registered_model(name)
    except MlflowException as error:
        if getattr(error, "error_code", "") not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    version = client.create_model_version(
        name, source, run_id=run_id, model_id=model_id,
        await_creation_for=REGISTRATION_WAIT_SECONDS,
    )
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return version_info(client, client.get_model_version(name, version.version))


def set_alias(client: Any, name: str, alias: str, version: int) -> ModelVersionInfo:
    """Point ``alias`` at ``version``, moving it from wherever it pointed before."""
    from mlflow.exceptions import MlflowException

    require_registered_model(client, name)
    try:
        model_version = client.get_model_version(name, str(version))
    except MlflowException as error:
        if _is_missing(error):
            raise NotFoundError("model version", f"{name}/{version}",
                                f"see: agentnn model versions {name}") from None
        raise
    if alias.isdigit() or alias.lower() == "latest" or not alias.strip():
        raise InputError(f"alias {alias!r} is reserved or ambiguous; use a name like 'champion'")
    client.set_registered_model_alias(name, alias, model_version.version)
    return version_info(client, client.get_model_version(name, str(version)))


def delete_alias(client: Any, name: str, alias: str) -> None:
    """Remove ``alias``; NotFoundError when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    require_registered_model(client, name)
    try:
        client.get_model_version_by_alias(name, alias)
    except MlflowException as error:
        if _is_missing(error) or "alias" in str(error).lower():
            raise NotFoundError("alias", f"{name}@{alias}") from None
        raise
    client.delete_registered_model_alias(name, alias)


def list_versions(client: Any, name: str, page_size: int) -> list[ModelVersionInfo]:
    """Every version of ``name``, newest first, with aliases and the metrics of its run."""
    require_registered_model(client, name)
    versions: list[Any] = []
    token = None
    while True:
        page = client.search_model_versions(
            f"name = '{_escape(name)}'", max_results=page_size, page_token=token
        )
        versions.extend(page)
        token = getattr(page, "token", None)
        if not token:
            break
    infos = [version_info(client, version) for version in versions]
    return sorted(infos, key=lambda info: info.version, reverse=True)


def version_info(client: Any, version: Any) -> ModelVersionInfo:
    """A registry ModelVersion as plain data, with the latest metrics of the run behind it."""
    metrics: dict[str, float] = {}
    if version.run_id:
        try:
            metrics = dict(client.get_run(version.run_id).data.metrics)
        except Exception:  # the run may be deleted or live on another store; show what is there
            metrics = {}
    stage = getattr(version, "current_stage", None)
    return ModelVersionInfo(
        name=version.name,
        version=int(version.version),
        aliases=sorted(getattr(version, "aliases", None) or []),
        run_id=version.run_id or None,
        source=version.source,
        status=version.status,
        created_ms=version.creation_timestamp,
        model_id=getattr(version, "model_id", None),
        run_metrics=metrics,
        stage=stage if stage and stage != "None" else None,
    )


def resolve_legacy_stage_uri(client: Any, uri: str) -> str:
    """``models:/name/Production`` -> ``name/<version>``, with a deprecation warning.

    Other URIs come back unchanged. Stages are deprecated in MLflow; aliases replace them.
    """
    match = _STAGE_URI.match(uri)
    if match is None or match.group("stage").lower() not in LEGACY_STAGES:
        return uri
    name, stage = match.group("name"), match.group("stage")
    require_registered_model(client, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        latest = client.get_latest_versions(name, stages=[stage])
    if not latest:
        raise NotFoundError("model stage", f"{name}/{stage}",
                            "stages are deprecated; promote with an alias instead")
    version = max(int(v.version) for v in latest)
    warnings.warn(
        f"models:/{name}/{stage} uses a deprecated registry stage; it resolved to version "
        f"{version}. Promote with an alias and load {name}@<alias> instead.",
        DeprecationWarning, stacklevel=3,
    )
    return f"{name}/{version}"


def _escape(value: str) -> str:
    return value.replace("'", "\\'")
