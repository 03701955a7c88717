"""The model registry through ``MlflowClient``: register, move and remove aliases, list versions.

Promotion is by alias (``agent-router@champion``); MLflow has deprecated stages, which are
shown in version listings only where a store still uses them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentnn.errors import InputError, NotFoundError, RunHasNoModelError
from agentnn.mlflow_integration.store.classify import is_already_exists, is_not_found
from agentnn.sdk._mlflow_reader import logged_models_of_run
from agentnn.sdk._records import ModelVersionInfo

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel

MLMODEL_FILE = "MLmodel"
MODEL_ID_TAG = "agentnn.model_id"  # on a version: SQL registries do not keep MLflow's model_id
REGISTRATION_WAIT_SECONDS = 300  # MLflow's own default wait for a version to become READY


def _is_missing(error: Exception) -> bool:
    """An unknown name, version or alias (SQLite stores say INVALID_PARAMETER_VALUE)."""
    return is_not_found(error, lookup=True)


def require_registered_model(client: MlflowClient, name: str) -> RegisteredModel:
    """The registered model ``name``; NotFoundError naming it when the registry lacks it."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException as error:
        if _is_missing(error):
            raise NotFoundError("registered model", name,
                                "list versions of a known name or register one first") from None
        raise


def find_model_source(
    client: MlflowClient, run_id: str, run: Run | None = None
) -> tuple[str, str | None]:
    """(source URI, model id) of the newest model a run logged (``run``: the run, if fetched).

    MLflow 3 runs log LoggedModels (found by ``source_run_id``); older runs and other tools
    put an ``MLmodel`` folder among the run's artifacts, usually ``model/``.
    """
    run = run if run is not None else client.get_run(run_id)
    models = logged_models_of_run(client, run.info.experiment_id, run_id)
    if models:
        # The model's storage location rather than ``models:/<id>``: MLflow's SQL registry
        # resolves that URI against the process-global tracking URI, not this client's.
        model = models[-1]
        return model.artifact_location, model.model_id
    for path in _mlmodel_folders(client, run_id):
        return f"{run.info.artifact_uri.rstrip('/')}/{path}", None
    raise RunHasNoModelError(run_id)


def _mlmodel_folders(client: MlflowClient, run_id: str) -> list[str]:
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


def register(client: MlflowClient, run_id: str, name: str, alias: str | None) -> ModelVersionInfo:
    """Register the run's model under ``name`` (created when new); optionally set an alias."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)  # once: the source and the version's metrics come from it
    except MlflowException as error:
        if _is_missing(error):
            raise NotFoundError("run", run_id) from None
        raise
    source, model_id = find_model_source(client, run_id, run)
    try:
        client.create_registered_model(name)
    except MlflowException as error:
        if not is_already_exists(error):
            raise
    version = client.create_model_version(
        name, source, run_id=run_id, model_id=model_id,
        tags={MODEL_ID_TAG: model_id} if model_id else None,
        await_creation_for=REGISTRATION_WAIT_SECONDS,
    )
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
        version.aliases = [alias]
    return version_info(client, version, run=run)


def set_alias(client: MlflowClient, name: str, alias: str, version: int) -> ModelVersionInfo:
    """Point ``alias`` at ``version``, moving it from wherever it pointed before."""
    from mlflow.exceptions import MlflowException

    if alias.isdigit() or alias.lower() == "latest" or not alias.strip():
        raise InputError(f"alias {alias!r} is reserved or ambiguous; use a name like 'champion'")
    require_registered_model(client, name)
    try:
        model_version = client.get_model_version(name, str(version))
    except MlflowException as error:
        if _is_missing(error):
            raise NotFoundError("model version", f"{name}/{version}",
                                f"see: agentnn model versions {name}") from None
        raise
    client.set_registered_model_alias(name, alias, model_version.version)
    return version_info(client, client.get_model_version(name, str(version)))


def delete_alias(client: MlflowClient, name: str, alias: str) -> None:
    """Remove ``alias``; NotFoundError when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    require_registered_model(client, name)
    try:
        client.get_model_version_by_alias(name, alias)
    except MlflowException as error:
        if _is_missing(error):
            raise NotFoundError("alias", f"{name}@{alias}") from None
        raise
    client.delete_registered_model_alias(name, alias)


def list_versions(client: MlflowClient, name: str, page_size: int) -> list[ModelVersionInfo]:
    """Every version of ``name``, newest first, with aliases and the metrics of its run."""
    model = require_registered_model(client, name)
    aliases_by_version: dict[int, list[str]] = {}
    for alias, version in (getattr(model, "aliases", None) or {}).items():
        aliases_by_version.setdefault(int(version), []).append(alias)
    versions: list[ModelVersion] = []
    token = None
    while True:
        page = client.search_model_versions(
            f"name = '{_escape(name)}'", max_results=page_size, page_token=token
        )
        versions.extend(page)
        token = getattr(page, "token", None)
        if not token:
            break
    # Searches do not fill in aliases on every store; the registered model knows them all.
    infos = [
        version_info(client, version, aliases_by_version.get(int(version.version), []))
        for version in versions
    ]
    return sorted(infos, key=lambda info: info.version, reverse=True)


def version_info(
    client: MlflowClient, version: ModelVersion, aliases: list[str] | None = None,
    run: Run | None = None,
) -> ModelVersionInfo:
    """A registry ModelVersion as plain data, with the latest metrics of the run behind it
    (``run``: that run, when the caller has it already)."""
    metrics: dict[str, float] = {}
    if run is not None and run.info.run_id == version.run_id:
        metrics = dict(run.data.metrics)
    elif version.run_id:
        try:
            metrics = dict(client.get_run(version.run_id).data.metrics)
        except Exception:  # the run may be deleted or live on another store; show what is there
            metrics = {}
    stage = getattr(version, "current_stage", None)
    return ModelVersionInfo(
        name=version.name,
        version=int(version.version),
        aliases=sorted(aliases if aliases is not None else getattr(version, "aliases", None)
                       or []),
        run_id=version.run_id or None,
        source=version.source,
        status=version.status,
        created_ms=version.creation_timestamp,
        model_id=_model_id_of(version),
        run_metrics=metrics,
        stage=stage if stage and stage != "None" else None,
    )


def _model_id_of(version: ModelVersion) -> str | None:
    """The LoggedModel behind a version: MLflow's field, our tag, or a ``models:/m-…`` source."""
    model_id: str | None = getattr(version, "model_id", None)
    if model_id:
        return model_id
    tags: dict[str, str] = getattr(version, "tags", None) or {}
    if tags.get(MODEL_ID_TAG):
        return tags[MODEL_ID_TAG]
    source = version.source or ""
    if source.startswith("models:/m-"):
        return source[len("models:/"):]
    return None


def _escape(value: str) -> str:
    return value.replace("'", "\\'")
