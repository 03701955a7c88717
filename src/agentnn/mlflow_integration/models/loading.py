"""The one model loader behind the runtime ``ModelManager`` and the SDK's ``load_model``.

It accepts every way a user names a model, resolves it to one concrete version, and keeps
downloads to a minimum:

* ``name@alias`` / ``models:/name@alias``: the alias is resolved to a version on every load
  (one cheap registry call), so a moved alias is noticed, then the version is looked up in
  the caches;
* ``name/version`` / ``models:/name/version`` (and ``name/latest``);
* ``models:/name/Production`` (a legacy stage): resolved where the store still has stages,
  with a :class:`DeprecationWarning`, because MLflow replaced stages by aliases;
* ``runs:/<run_id>/<path>``, an MLflow 3 model id (``m-…`` or ``models:/m-…``);
* a local folder: an MLflow model folder or a folder written by ``save_torch_model``.

Downloaded models are kept on disk under ``<cache_dir>/<store>/`` by version (the store part
is a hash of the tracking URI, so two stores never share entries) and, once built, in memory.
A model in agentnn's safe format has its weights' sha256 checked every time it is read from
disk, against its spec.json and, for a model from the store, against the ``agentnn.sha256`` tag
the store recorded when it was logged. MLflow's default ``pt2`` format loads without trust when
MLflow's own check finds no pickle in it; anything else (a pickled ``mlflow.pytorch`` model)
loads only with ``trust=True``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
import tempfile
import threading
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import quote

from agentnn import config
from agentnn.errors import (
    AgentNNDeprecationWarning,
    MalformedModelError,
    ModelError,
    NotFoundError,
    TrackingURIError,
    UnsafeModelError,
)
from agentnn.mlflow_integration.models.format import (
    LOADER_MODULE,
    SHA256_TAG,
    SPEC_FILE,
    ModelSpec,
    inside_folder,
    load_torch_model,
    read_spec,
)
from agentnn.mlflow_integration.store.classify import is_not_found, is_unsupported
from agentnn.mlflow_integration.store.client import Store

if TYPE_CHECKING:
    from types import FrameType

    import torch
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModel
    from mlflow.entities.model_registry import ModelVersion

MODEL_ID_PATTERN = re.compile(r"^m-[0-9a-f]{32}$")
LEGACY_STAGES = {"none": "None", "staging": "Staging", "production": "Production",
                 "archived": "Archived"}
MLMODEL_FILE = "MLmodel"
# A load prints nothing but its result or its one-line error (a user's own setting wins).
NO_PROGRESS_BAR = {config.MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR: "false"}
STORE_KEY_LENGTH = 16  # hex characters of the tracking URI's sha256 naming its cache folder
URI_FORMS = ("name@alias, name/version, models:/name@alias, models:/name/version, "
             "runs:/<run_id>/<path>, a model id (m-…) or a local model folder")


@dataclass(frozen=True)
class ModelReference:
    """What a model URI points at, resolved to one concrete version where there is one."""

    source: str
    """The URI as the user wrote it."""
    resolved_uri: str
    """What is downloaded: ``models:/name/3``, ``runs:/…``, ``models:/m-…`` or a local path."""
    cache_key: tuple[str, ...] | None
    """Path parts of the disk cache entry; None for a local folder, which is never copied."""
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None
    model_id: str | None = None


@dataclass(frozen=True)
class LoadedModel:
    """A ready module in eval mode and everything known about where it came from."""

    module: torch.nn.Module
    """Shared with other loads of the same version from this loader: treat it as read-only."""
    source: str
    resolved_uri: str
    path: Path
    """The local folder the module was read from (the cache entry or the user's folder)."""
    safe: bool
    """True when no trust was needed: agentnn's safe format, or a pt2 model that passed
    MLflow's pickle check; False for a model loaded with trust=True."""
    cache: str
    """``"memory"``, ``"disk"``, ``"download"`` or ``"local"``: where the model came from."""
    spec: ModelSpec | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    sha256: str | None = None
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None
    model_id: str | None = None
    signature: dict[str, Any] | None = None
    device: str = "cpu"
    format: str = "safetensors"
    """``"safetensors"`` (agentnn's safe format), ``"pt2"`` or ``"pickle"`` (mlflow.pytorch)."""

    @property
    def cache_hit(self) -> bool:
        """True when nothing was downloaded for this load."""
        return self.cache in ("memory", "disk")


class _Described(TypedDict):
    """Where an opened folder came from: the :class:`LoadedModel` fields every format shares."""

    source: str
    resolved_uri: str
    path: Path
    cache: str
    name: str | None
    version: str | None
    alias: str | None
    run_id: str | None
    model_id: str | None
    device: str
    signature: dict[str, Any] | None


@dataclass
class LoaderStats:
    """Counts of where loads were served from; tests and the load runs read them."""

    downloads: int = 0
    disk_hits: int = 0
    memory_hits: int = 0
    local_loads: int = 0


def _is_not_found(error: Exception, *, lookup: bool = False) -> bool:
    """Not found, or (a server older than MLflow 3 asked for a logged model) no such endpoint;
    ``lookup`` as in :func:`agentnn.mlflow_integration.store.classify.is_not_found`."""
    return is_not_found(error, lookup=lookup) or is_unsupported(error)


class ModelLoader:
    """Resolves model URIs against one store and loads them through a disk and memory cache."""

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        cache_dir: str | Path | None = None,
        store: Store | None = None,
    ):
        """``store``: settings already resolved (the URI keeps its source); else resolved here."""
        self.store = store if store is not None else Store.resolve(tracking_uri)
        self.store.validate()  # a malformed URI fails here, in one line
        settings = self.store.settings
        self.tracking_uri = settings.tracking_uri.value
        store_key = hashlib.sha256(self.tracking_uri.encode()).hexdigest()[:STORE_KEY_LENGTH]
        self.cache_dir = Path(cache_dir or settings.cache_dir.value).expanduser() / store_key
        self.stats = LoaderStats()
        self._memory: dict[tuple[str, ...], LoadedModel] = {}
        self._lock = threading.RLock()
        self._client: MlflowClient | None = None

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self.store.require_existing()  # loading never creates a store at a mistyped path
            self._client = self.store.client()  # probes a server first: a dead one fails fast
        return self._client

    def clear_memory(self) -> None:
        """Forget the built modules; the next load reads (and re-verifies) the disk cache."""
        with self._lock:
            self._memory.clear()

    # --- resolution ------------------------------------------------------------------------

    def resolve(self, uri: str) -> ModelReference:
        """The concrete model a URI names; raises NotFoundError for anything unknown."""
        text = str(uri).strip()
        if text.startswith("models:/"):
            return self._resolve_registry(text[len("models:/"):].strip("/"), text)
        if text.startswith("runs:/"):
            return self._resolve_run(text)
        if MODEL_ID_PATTERN.match(text):
            return self._resolve_model_id(text, text)
        local = Path(text).expanduser()
        if local.exists():
            return ModelReference(source=text, resolved_uri=str(local.resolve()), cache_key=None)
        if "@" in text or "/" in text:
            return self._resolve_registry(text, text)
        raise NotFoundError("model", text, f"expected {URI_FORMS}")

    def _resolve_registry(self, rest: str, source: str) -> ModelReference:
        if MODEL_ID_PATTERN.match(rest):
            return self._resolve_model_id(rest, source)
        if "@" in rest:
            name, alias = rest.rsplit("@", 1)
            return self._from_version(self._version_by_alias(name, alias), source, alias=alias)
        if "/" not in rest:
            raise NotFoundError("model", source, f"expected {URI_FORMS}")
        name, version = rest.rsplit("/", 1)
        if version.isdigit():
            return self._from_version(self._version(name, version), source)
        if version.lower() == "latest":
            return self._from_version(self._latest_version(name), source)
        if version.lower() in LEGACY_STAGES:
            return self._from_version(self._version_by_stage(name, version), source)
        raise NotFoundError(
            "model version", source, "a version is a number, 'latest', or use name@alias"
        )

    def _version_by_alias(self, name: str, alias: str) -> ModelVersion:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version_by_alias(name, alias)
        except MlflowException as error:  # SQLite says INVALID_PARAMETER_VALUE for a lost alias
            if not _is_not_found(error, lookup=True):
                raise
        self._require_registered_model(name)
        raise NotFoundError("alias", f"{name}@{alias}", f"list them with: agentnn model versions "
                            f"{name}")

    def _version(self, name: str, version: str) -> ModelVersion:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version(name, version)
        except MlflowException as error:
            if not _is_not_found(error, lookup=True):
                raise
        self._require_registered_model(name)
        raise NotFoundError("model version", f"{name}/{version}",
                            f"list them with: agentnn model versions {name}")

    def _latest_version(self, name: str) -> ModelVersion:
        self._require_registered_model(name)
        versions = self.client.search_model_versions(f"name = '{name}'")
        if not versions:
            raise NotFoundError("model version", f"{name}/latest", "the model has no versions")
        return max(versions, key=lambda version: int(version.version))

    def _version_by_stage(self, name: str, stage: str) -> ModelVersion:
        from mlflow.exceptions import MlflowException

        stage = LEGACY_STAGES[stage.lower()]
        warnings.warn(
            f"models:/{name}/{stage} uses an MLflow stage; stages are deprecated (removed in "
            f"agentnn 0.3.0), promote with "
            f"an alias instead (agentnn model alias {name} champion <version>) and load "
            f"{name}@champion",
            AgentNNDeprecationWarning,
            stacklevel=_stacklevel_outside_agentnn(),
        )
        self._require_registered_model(name)
        try:
            with warnings.catch_warnings():  # MLflow's own notice says the same thing
                warnings.simplefilter("ignore")
                versions: list[ModelVersion] = self.client.get_latest_versions(name,
                                                                               stages=[stage])
        except MlflowException as error:
            hint = f"this store has no stages ({error.message}); use an alias"
            raise NotFoundError("model stage", f"{name}/{stage}", hint) from None
        if not versions:
            raise NotFoundError("model stage", f"{name}/{stage}", "no version is in that stage")
        return versions[0]

    def _require_registered_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException as error:
            if _is_not_found(error):
                raise NotFoundError("registered model", name) from None
            raise

    def _from_version(self, version: ModelVersion, source: str,
                      alias: str | None = None) -> ModelReference:
        model_id = getattr(version, "model_id", None)
        if not model_id and str(version.source or "").startswith("models:/m-"):
            model_id = str(version.source)[len("models:/"):]
        return ModelReference(
            source=source,
            resolved_uri=f"models:/{version.name}/{version.version}",
            cache_key=("versions", quote(version.name, safe=""), str(version.version)),
            name=version.name,
            version=str(version.version),
            alias=alias,
            run_id=version.run_id or None,
            model_id=model_id or None,
        )

    def _resolve_run(self, text: str) -> ModelReference:
        from mlflow.exceptions import MlflowException

        run_id, _, path = text[len("runs:/"):].strip("/").partition("/")
        if not run_id or not path:
            raise NotFoundError("model", text, "expected runs:/<run_id>/<model path>")
        try:
            self.client.get_run(run_id)
        except MlflowException as error:
            if _is_not_found(error, lookup=True):
                raise NotFoundError("run", run_id) from None
            raise
        return ModelReference(
            source=text, resolved_uri=f"runs:/{run_id}/{path}",
            cache_key=("runs", run_id, *(quote(part, safe="") for part in path.split("/"))),
            run_id=run_id,
        )

    def _resolve_model_id(self, model_id: str, source: str) -> ModelReference:
        from mlflow.exceptions import MlflowException

        try:
            logged = self.client.get_logged_model(model_id)
        except MlflowException as error:
            if _is_not_found(error):
                raise NotFoundError("model", model_id) from None
            raise
        return ModelReference(
            source=source, resolved_uri=f"models:/{model_id}", cache_key=("models", model_id),
            run_id=logged.source_run_id or None, model_id=model_id,
        )

    # --- loading ---------------------------------------------------------------------------

    def load(self, uri: str, *, trust: bool = False, device: str = "cpu") -> LoadedModel:
        """Resolve ``uri`` and return its module in eval mode, from the caches when possible.

        Raises:
            NotFoundError: the model, version, alias or run is unknown.
            ModelIntegrityError: the weights do not match the sha256 recorded at logging time.
            UnsafeModelError: the model is not in the safe format and ``trust`` is False.
            UntrustedBuilderError: the spec names a builder outside agentnn.
            TrackingURIError: the store does not answer (StoreUnreachableError) or refuses
                the credentials (AuthenticationError, PermissionDeniedError).
        """
        with self.store.errors(kind="model", name=uri):  # MLflow's errors, as agentnn's
            return self._load(uri, trust=trust, device=device)

    def _load(self, uri: str, *, trust: bool, device: str) -> LoadedModel:
        reference = self.resolve(uri)
        with self._lock:
            cache_key = reference.cache_key
            if cache_key is None:
                self.stats.local_loads += 1
                return self._open(Path(reference.resolved_uri), reference, "local", trust, device)
            memory_key = (*cache_key, device)
            cached = self._memory.get(memory_key)
            if cached is not None:
                if not cached.safe and not trust:
                    raise _unsafe_error(reference.source, cached.format)
                self.stats.memory_hits += 1
                return replace(cached, source=reference.source, alias=reference.alias,
                               cache="memory")
            logged = self._logged_model(reference)
            if logged is not None:
                reference = replace(reference, model_id=logged.model_id)
            recorded = (logged.tags or {}).get(SHA256_TAG) if logged is not None else None
            folder = self.cache_dir.joinpath(*cache_key)
            if folder.is_dir():
                self.stats.disk_hits += 1
                loaded = self._open(folder, reference, "disk", trust, device, recorded)
            else:
                location = logged.artifact_location if logged is not None else None
                loaded = self._download_and_open(reference, folder, trust, device, recorded,
                                                 location)
            self._memory[memory_key] = loaded
            return loaded

    def _download_and_open(
        self, reference: ModelReference, folder: Path, trust: bool, device: str,
        recorded: str | None, location: str | None,
    ) -> LoadedModel:
        """Download into a scratch folder, open it, and only then move it into the cache.

        A model that fails its checks (tampered weights, unsafe without trust) therefore never
        lands in the cache.
        """
        import mlflow
        from mlflow.exceptions import MlflowException

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=self.cache_dir))
        try:
            try:
                artifact_uri = location or self._artifact_location(reference)
                with config.mlflow_environment(NO_PROGRESS_BAR):
                    downloaded = Path(mlflow.artifacts.download_artifacts(
                        artifact_uri=artifact_uri, dst_path=str(scratch),
                        tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri,
                    ))
            except (MlflowException, OSError) as error:
                translated = self.store.translate(error)
                if isinstance(translated, TrackingURIError):  # unreachable, 401, 403, 500
                    raise translated from None
                hint = f"no model files at {reference.resolved_uri} ({error})"
                raise NotFoundError("model", reference.source, hint) from None
            self.stats.downloads += 1
            loaded = self._open(downloaded, reference, "download", trust, device, recorded)
            folder.parent.mkdir(parents=True, exist_ok=True)
            if not folder.exists():
                downloaded.rename(folder)
            return replace(loaded, path=folder)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _logged_model(self, reference: ModelReference) -> LoggedModel | None:
        """The MLflow 3 logged model behind a reference, or None (a local folder, or a model
        stored only as run artifacts).

        Its ``agentnn.sha256`` tag is the hash recorded when the model was logged; it lives in
        the tracking store, so rewriting the weights and spec.json in the artifact store
        together cannot match it.
        """
        from mlflow.exceptions import MlflowException

        model_id = reference.model_id
        runs_uri = reference.resolved_uri if reference.resolved_uri.startswith("runs:/") else None
        if not model_id and reference.name and reference.version:
            source = str(self.client.get_model_version(reference.name, reference.version).source)
            runs_uri = source if source.startswith("runs:/") else None
            if source.startswith("models:/m-"):
                model_id = source[len("models:/"):]
        if not model_id and runs_uri:
            model_id = self._run_logged_model_id(runs_uri)
        if not model_id:
            return None
        try:
            return self.client.get_logged_model(model_id)
        except MlflowException as error:
            if _is_not_found(error):
                return None
            raise

    def _run_logged_model_id(self, runs_uri: str) -> str | None:
        """The id of the model a run logged under ``runs:/<run_id>/<name>``, if any."""
        run_id, _, path = runs_uri[len("runs:/"):].strip("/").partition("/")
        if not path or "/" in path:
            return None
        run = self.client.get_run(run_id)
        models = self.client.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"source_run_id = '{run_id}' AND name = '{path}'",
        )
        if not models:
            return None
        return max(models, key=lambda model: model.creation_timestamp or 0).model_id

    def _artifact_location(self, reference: ModelReference) -> str:
        """The concrete artifact URI (file:, mlflow-artifacts:, s3: …) of a resolved model.

        MLflow resolves ``models:/`` and ``runs:/`` URIs partly through its process-wide
        tracking URI, whatever store is named; resolving them here keeps every lookup on this
        loader's store.
        """
        if reference.model_id:
            return self.client.get_logged_model(reference.model_id).artifact_location
        if reference.name and reference.version:
            source = self.client.get_model_version(reference.name, reference.version).source
            if str(source).startswith("runs:/"):
                return self._run_model_location(str(source))
            return self.client.get_model_version_download_uri(reference.name, reference.version)
        return self._run_model_location(reference.resolved_uri)

    def _run_model_location(self, runs_uri: str) -> str:
        """Where ``runs:/<run_id>/<path>`` lives: the model the run logged under that name
        (MLflow 3 keeps logged models outside the run's folder), else the run's own artifacts."""
        run_id, _, path = runs_uri[len("runs:/"):].strip("/").partition("/")
        run = self.client.get_run(run_id)
        if "/" not in path:
            models = self.client.search_logged_models(
                experiment_ids=[run.info.experiment_id],
                filter_string=f"source_run_id = '{run_id}' AND name = '{path}'",
            )
            if models:
                latest = max(models, key=lambda model: model.creation_timestamp or 0)
                return latest.artifact_location
        return f"{run.info.artifact_uri.rstrip('/')}/{path}"

    def _open(
        self, folder: Path, reference: ModelReference, cache: str, trust: bool, device: str,
        recorded: str | None = None,
    ) -> LoadedModel:
        """Build the module from a local model folder, refusing unsafe formats without trust.

        ``recorded`` is the weights' sha256 the store recorded at logging time; a folder that
        does not hold that agentnn model is refused whatever ``trust`` says.
        """
        from agentnn.mlflow_integration.models import mlflow_pytorch as foreign

        if not folder.is_dir():
            raise ModelError(f"{folder} is not a model folder")
        described = _Described(source=reference.source, resolved_uri=reference.resolved_uri,
                               path=folder, cache=cache, name=reference.name,
                               version=reference.version, alias=reference.alias,
                               run_id=reference.run_id, model_id=reference.model_id,
                               device=device, signature=None)
        if (folder / SPEC_FILE).exists() or (folder / SPEC_FILE).is_symlink():
            return self._open_safe(folder, described, recorded)
        if not ((folder / MLMODEL_FILE).exists() or (folder / MLMODEL_FILE).is_symlink()):
            raise ModelError(f"{folder} holds neither an MLmodel file nor an agentnn {SPEC_FILE}")
        mlmodel = foreign.read_mlmodel(folder)
        described["run_id"] = described["run_id"] or mlmodel.get("run_id")
        described["model_id"] = described["model_id"] or mlmodel.get("model_id")
        described["signature"] = mlmodel.get("signature")
        flavors = mlmodel["flavors"]
        pyfunc = flavors.get("python_function", {})
        if pyfunc.get("loader_module") == LOADER_MODULE:
            data = inside_folder(folder, pyfunc.get("data"), "the MLmodel data path")
            return self._open_safe(data, described, recorded)
        if recorded is not None:
            raise MalformedModelError(str(folder / MLMODEL_FILE), "the store recorded an agentnn "
                                      "model here, but the folder holds another format")
        if "pytorch" not in flavors:
            flavours = ", ".join(sorted(flavors)) or "none"
            raise ModelError(f"{reference.source} is not a PyTorch model (its flavours: "
                             f"{flavours})")
        serialization, data = foreign.pytorch_model_data(folder, flavors["pytorch"])
        metadata = dict(mlmodel.get("metadata") or {})
        if serialization == "pt2":
            module, clean = foreign.load_pt2(data, source=reference.source, trust=trust,
                                             device=device)
            return LoadedModel(module=module, safe=clean, metadata=metadata, format="pt2",
                               **described)
        if not trust:
            raise _unsafe_error(reference.source, serialization)
        pickled = foreign.load_pickled(folder, source=reference.source, device=device)
        return LoadedModel(module=pickled, safe=False, metadata=metadata, format="pickle",
                           **described)

    def _open_safe(
        self, folder: Path, described: _Described, recorded: str | None
    ) -> LoadedModel:
        spec = read_spec(folder)
        module = load_torch_model(folder, device=described["device"], expected_sha256=recorded)
        return LoadedModel(module=module, safe=True, spec=spec,
                           metadata=dict(spec.get("metadata") or {}), sha256=spec["sha256"],
                           **described)


def _stacklevel_outside_agentnn() -> int:
    """The stacklevel of the first caller outside agentnn, so Python's default filters show
    the warning in the user's code rather than hide it as agentnn's own business."""
    package_dir = str(Path(__file__).resolve().parents[1])
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(package_dir):
        frame, level = frame.f_back, level + 1
    return level


def _unsafe_error(source: str, serialization: str) -> UnsafeModelError:
    if serialization == "pickle":
        why = ("it is a pickled mlflow.pytorch model, and unpickling runs whatever code the "
               "file names")
    else:
        why = (f"it is an mlflow.pytorch model ({serialization}) that was loaded with trust, "
               "not found free of pickle")
    return UnsafeModelError(
        f"refusing to load {source}: {why}; pass trust=True (--trust) only if you trust "
        "whoever wrote it"
    )


_SHARED_LOADERS: dict[tuple[str, str], ModelLoader] = {}
_SHARED_LOCK = threading.Lock()


def shared_loader(tracking_uri: str | None = None) -> ModelLoader:
    """The process-wide loader of a store, so every entry point shares one memory cache."""
    store = Store.resolve(tracking_uri)  # resolved once; the loader keeps it, with its source
    key = (store.uri, store.settings.cache_dir.value)
    with _SHARED_LOCK:
        if key not in _SHARED_LOADERS:
            _SHARED_LOADERS[key] = ModelLoader(
                store=store, cache_dir=store.settings.cache_dir.value
            )
        return _SHARED_LOADERS[key]


def load_model(
    uri: str, *, tracking_uri: str | None = None, trust: bool = False, device: str = "cpu"
) -> LoadedModel:
    """Load a model by any URI form (see the module docstring); module in eval mode.

    Raises NotFoundError, ModelIntegrityError, UnsafeModelError or UntrustedBuilderError
    (all :class:`agentnn.errors.ModelError` or NotFoundError) with a one-line reason.
    """
    return shared_loader(tracking_uri).load(uri, trust=trust, device=device)

