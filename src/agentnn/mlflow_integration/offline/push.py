"""Copy runs from one MLflow store to another, whole, exactly once: ``agentnn model push``.

A run that started while its tracking server did not answer lives in the embedded store
(``./mlruns/mlflow.db``) with the tags ``agentnn.push=pending`` and
``agentnn.intended_tracking_uri`` (masked). :func:`push_run` copies such a run, or any run,
to another store: experiment (by name), run name, params, tags, every metric point with its step
and timestamp, status, start and end time, artifacts, logged models (with their files, so the
copy loads with agentnn's loader) and the registrations the run made: each version with its
tags and description, the aliases that point at it, and its registered model's tags and
description (see :meth:`_Push._registrations` for who wins when the target differs).

Why it compares instead of remembering: a push can be cut off anywhere (process killed, server
down again). The target run is found by its ``agentnn.source_run_id`` tag, and each piece is
sent only when the target lacks it (metric points are compared as ``(step, timestamp, value)``),
so running a push again finishes an interrupted one and otherwise changes nothing.

The writer process pushes pending runs by itself (:class:`AutoPusher`): it probes the intended
store with back-off and, once it answers, pushes each pending run; a run still going is pushed
again every few seconds until it ends, so the server's copy follows it. What a failed push
means is decided by :mod:`agentnn.mlflow_integration.store.classify`: no answer or a server
error is tried again soon; refused credentials or a missing permission keep the run pending and
are tried again only after a long back-off (someone has to fix them), which the log says; any
other refusal gives the run up until ``agentnn model push --pending``.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agentnn import config
from agentnn.config import mask_uri
from agentnn.errors import NotFoundError, TrackingError
from agentnn.mlflow_integration.store.classify import (
    NEEDS_A_PERSON,
    NEEDS_A_PERSON_BACKOFF,
    TRANSIENT,
    Outcome,
    classify,
    is_already_exists,
    is_not_found,
    is_unsupported,
)
from agentnn.mlflow_integration.store.probe import ServerProbe

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import FileInfo, LoggedModel, Metric, Run
    from mlflow.entities.model_registry import ModelVersion

# --- tags ----------------------------------------------------------------------------------
PUSH_TAG = "agentnn.push"  # "pending" until the run is whole on its intended store, then "done"
PUSH_PENDING, PUSH_DONE = "pending", "done"
INTENDED_URI_TAG = "agentnn.intended_tracking_uri"  # masked; the real URI never enters a store
PUSHED_TO_TAG = "agentnn.pushed_to"  # "<masked target URI> <target run id>"
# Why a pending run is still pending, set by the writer: what the store answered, or that the
# writer stopped trying; removed once the run is pushed. `agentnn model runs --pending` shows it.
PUSH_NOTE_TAG = "agentnn.push_note"
SOURCE_RUN_TAG = "agentnn.source_run_id"  # on the copy: the run it was copied from
SOURCE_MODEL_TAG = "agentnn.source_model_id"  # on a copied LoggedModel
RUN_MODEL_ID_TAG = "agentnn.model_id"  # set by log_torch_model; remapped to the copy's model
RUN_MODEL_URI_TAG = "agentnn.model_uri"
VERSION_MODEL_ID_TAG = "agentnn.model_id"  # on a version: SQL registries drop MLflow's model_id
SOURCE_VERSION_TAG = "agentnn.source_version"  # on a copied version: its number on the source
NOT_COPIED_VERSION_TAGS = frozenset({VERSION_MODEL_ID_TAG, SOURCE_VERSION_TAG})  # set per store
PARENT_RUN_TAG = "mlflow.parentRunId"
NOT_COPIED_TAGS = frozenset({PUSH_TAG, PUSHED_TO_TAG, PUSH_NOTE_TAG, PARENT_RUN_TAG})
NOT_COPIED_MODEL_TAGS = frozenset({"mlflow.modelVersions"})  # MLflow sets it on registering

# --- limits and timing ---------------------------------------------------------------------
MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100  # MLflow's log_batch limits per call
TERMINAL_STATUSES = frozenset({"FINISHED", "FAILED", "KILLED"})
PROBE_TIMEOUT = 2.0  # seconds one health probe of the intended store may take
BACKOFF_START, BACKOFF_MAX = 1.0, 10.0  # seconds between probes of a store that is down
LIVE_PUSH_INTERVAL = 2.0  # seconds between pushes of a run that is still going, at the least
LIVE_PUSH_DUTY = 4.0  # ... and at least this many times the last push's duration
STATUS_CHECK_INTERVAL = 1.0  # seconds between looks at whether a run pushed live has ended
GIVE_UP_NOTE_ATTEMPTS = 4  # tries of the last push note, against a local store busy elsewhere
MARKER_SUFFIX = ".push"  # <journal_dir>/<run_id>.push: a run the writer should push
LOCK_SUFFIX = ".push.lock"
REGISTRATION_WAIT_SECONDS = 300
# MLflow's per-download progress bars would break the command's own, and its "View run … at:"
# lines (written on every copy's set_terminated on a server) would break `--output json`;
# a user's own values win.
QUIET_MLFLOW = {config.MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR: "false",
                config.MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT: "true"}

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushResult:
    """What one push did; counts are of what was sent this time (0 when already there)."""

    source_run_id: str
    target_run_id: str
    target_uri: str
    """Masked."""
    status: str
    """The run's status; a RUNNING run is pushed again until it ends."""
    created: bool = False
    """True when this push created the target run."""
    metrics: int = 0
    params: int = 0
    tags: int = 0
    artifacts: int = 0
    models: int = 0
    registered: list[str] = field(default_factory=list)
    """``name/version`` created on the target this time."""
    aliases: list[str] = field(default_factory=list)
    """``name@alias`` set on the target this time (pointing at the copied version)."""
    registry: int = 0
    """Tags and descriptions of versions and registered models set on the target this time."""
    versions: dict[str, str] = field(default_factory=dict)
    """Every version the run created: source ``name/version`` -> target ``name/version``."""
    children: int = 0
    """Nested runs (e.g. search trials) pushed with it."""

    @property
    def complete(self) -> bool:
        """The run ended and the target has all of it."""
        return self.status in TERMINAL_STATUSES

    @property
    def changed(self) -> bool:
        return bool(self.created or self.metrics or self.params or self.tags or self.artifacts
                    or self.models or self.registered or self.aliases or self.registry
                    or self.children)

    def summary(self) -> str:
        """What was sent, in a few words, for a table cell."""
        parts = [f"{count} {name}" for name, count in (
            ("points", self.metrics), ("params", self.params), ("tags", self.tags),
            ("files", self.artifacts), ("models", self.models), ("aliases", len(self.aliases)),
            ("registry details", self.registry)) if count]
        return ", ".join(parts) or "nothing new"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "complete": self.complete}


# --- the push ------------------------------------------------------------------------------


def push_run(
    source: MlflowClient,
    target: MlflowClient,
    run_id: str,
    *,
    target_label: str,
    lock_dir: Path | None = None,
    known_points: dict[str, set[tuple[int, int, str]]] | None = None,
) -> PushResult:
    """Copy run ``run_id`` from ``source`` to ``target``, or finish an earlier copy.

    ``target_label`` is the target's masked URI, recorded on the source run. With ``lock_dir``
    a file lock keeps two pushes of the same run (the writer and the command) from racing.
    ``known_points`` (per metric key, the points the target has) lets a caller that pushes a
    running run again and again skip reading the target's whole history each time; it is
    filled in here. Re-sending a point is harmless: MLflow's SQL stores keep identical points once.

    Raises:
        NotFoundError: the run does not exist on the source.
        TrackingError: the target's experiment of that name is deleted.
    """
    # MLflow's per-download progress bars would break the command's own (a user's value wins).
    with config.mlflow_environment(QUIET_MLFLOW), run_lock(lock_dir, run_id):
        result = _Push(source, target, run_id, target_label, known_points).run()
        changed_children = 0
        for child in _children(source, run_id):
            # Nested runs (search trials) belong with their parent; they may have been
            # started in other processes, on the store the parent fell back to.
            if push_run(source, target, child, target_label=target_label).changed:
                changed_children += 1
    return dataclasses.replace(result, children=changed_children)


def pushed_result(source: MlflowClient, run_id: str) -> PushResult | None:
    """What an earlier push of a pending run did, read from its tags; None unless it is done.

    Why: the writer and ``agentnn model push --pending`` push the same runs; whichever comes
    second (it waited for :func:`run_lock`) reports the other's push instead of failing.
    """
    run = _get_run(source, run_id)
    if run.data.tags.get(PUSH_TAG) != PUSH_DONE:
        return None
    target_uri, _, target_run_id = run.data.tags.get(PUSHED_TO_TAG, "").rpartition(" ")
    return PushResult(source_run_id=run_id, target_run_id=target_run_id,
                      target_uri=target_uri, status=run.info.status)


@contextmanager
def run_lock(lock_dir: Path | None, run_id: str) -> Iterator[None]:
    """The one lock of a run's push, taken by the writer and the command alike (a file lock in
    the journal folder, so processes share it); not reentrant."""
    if lock_dir is None:
        yield
        return
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{run_id}{LOCK_SUFFIX}", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _Push:
    """One push of one run; each step sends only what the target lacks."""

    def __init__(self, source: MlflowClient, target: MlflowClient, run_id: str,
                 target_label: str,
                 known_points: dict[str, set[tuple[int, int, str]]] | None = None) -> None:
        self.source, self.target = source, target
        self.known = known_points if known_points is not None else {}
        self.run_id = run_id
        self.target_label = target_label
        self.counts: dict[str, int] = {}
        self.registered: list[str] = []
        self.aliases: list[str] = []
        self.registry = 0  # tags and descriptions set on versions and registered models
        self.versions: dict[tuple[str, str], str] = {}  # (name, source version) -> target's
        self.created = False
        self.model_ids: dict[str, str] = {}  # source model id -> target model id
        self.model_locations: dict[str, str] = {}  # target model id -> its artifact location

    def run(self) -> PushResult:
        # The status is read first: when it is terminal, everything else is already in.
        run = _get_run(self.source, self.run_id)
        status = run.info.status
        experiment = self.source.get_experiment(run.info.experiment_id)
        experiment_id = _target_experiment(self.target, experiment.name)
        target_run = self._target_run(experiment_id, run)
        target_id = target_run.info.run_id
        self._params(run, target_run)
        self._metrics(run, target_id)
        self._artifacts(target_id)
        self._models(run, experiment_id, target_id)
        self._tags(run, target_run)
        self._registrations(target_id)
        if status in TERMINAL_STATUSES and (
            target_run.info.status != status or target_run.info.end_time != run.info.end_time
        ):
            self.target.set_terminated(target_id, status, end_time=run.info.end_time)
        done = {PUSHED_TO_TAG: f"{self.target_label} {target_id}"}
        if status in TERMINAL_STATUSES and self._meant_for_target(run):
            done[PUSH_TAG] = PUSH_DONE
        for key, value in done.items():
            if run.data.tags.get(key) != value:
                self.source.set_tag(self.run_id, key, value)
        if PUSH_TAG in done and PUSH_NOTE_TAG in run.data.tags:
            self.source.delete_tag(self.run_id, PUSH_NOTE_TAG)  # nothing waits any more
        return PushResult(
            source_run_id=self.run_id, target_run_id=target_id, target_uri=self.target_label,
            status=status, created=self.created, metrics=self.counts.get("metrics", 0),
            params=self.counts.get("params", 0), tags=self.counts.get("tags", 0),
            artifacts=self.counts.get("artifacts", 0), models=self.counts.get("models", 0),
            registered=self.registered, aliases=self.aliases, registry=self.registry,
            versions={f"{name}/{number}": f"{name}/{copied}"
                      for (name, number), copied in self.versions.items()},
        )

    def _meant_for_target(self, run: Run) -> bool:
        """Whether the target is the store a fallen-back run was meant for (or the run never
        fell back): only then is a pending run done; a copy elsewhere leaves it pending."""
        intended = run.data.tags.get(INTENDED_URI_TAG)
        if run.data.tags.get(PUSH_TAG) != PUSH_PENDING or not intended:
            return True
        return intended.rstrip("/") == self.target_label.rstrip("/")

    # --- the run itself ----------------------------------------------------------------------

    def _target_run(self, experiment_id: str, run: Run) -> Run:
        """The copy made by an earlier push, or a new run with the source's name and start."""
        from mlflow.entities import ViewType

        found = self.target.search_runs(
            [experiment_id], filter_string=f"tags.`{SOURCE_RUN_TAG}` = '{self.run_id}'",
            run_view_type=ViewType.ALL, max_results=1,
        )
        if found:
            return found[0]
        self.created = True
        return self.target.create_run(
            experiment_id, start_time=run.info.start_time, run_name=run.info.run_name,
            tags={SOURCE_RUN_TAG: self.run_id},
        )

    def _params(self, run: Run, target_run: Run) -> None:
        from mlflow.entities import Param

        have = target_run.data.params
        missing = [Param(k, v) for k, v in sorted(run.data.params.items()) if k not in have]
        for start in range(0, len(missing), MAX_PARAMS):
            self.target.log_batch(target_run.info.run_id, params=missing[start:start + MAX_PARAMS])
        self.counts["params"] = len(missing)

    def _tags(self, run: Run, target_run: Run) -> None:
        """Every tag but the push's own; model ids and the parent point at their copies."""
        from mlflow.entities import RunTag

        wanted = {k: v for k, v in run.data.tags.items() if k not in NOT_COPIED_TAGS}
        source_model = wanted.get(RUN_MODEL_ID_TAG)
        if source_model in self.model_ids:
            wanted[RUN_MODEL_ID_TAG] = self.model_ids[source_model]
            wanted[RUN_MODEL_URI_TAG] = f"models:/{self.model_ids[source_model]}"
        parent = run.data.tags.get(PARENT_RUN_TAG)
        if parent:
            copied_parent = _find_copy(self.target, target_run.info.experiment_id, parent)
            if copied_parent:
                wanted[PARENT_RUN_TAG] = copied_parent
        have = target_run.data.tags
        missing = [RunTag(k, v) for k, v in sorted(wanted.items()) if have.get(k) != v]
        for start in range(0, len(missing), MAX_TAGS):
            self.target.log_batch(target_run.info.run_id, tags=missing[start:start + MAX_TAGS])
        self.counts["tags"] = len(missing)

    def _metrics(self, run: Run, target_id: str) -> None:
        """Every point of every metric the target lacks, oldest first, in log_batch chunks."""
        from mlflow.entities import Metric

        sent = 0
        pending: list[Metric] = []
        for key in sorted(run.data.metrics):
            points = self.source.get_metric_history(self.run_id, key)
            if key not in self.known:
                self.known[key] = set() if self.created else {
                    _point_key(p) for p in self.target.get_metric_history(target_id, key)
                }
            have = self.known[key]
            for point in sorted(points, key=lambda p: (p.timestamp, p.step)):
                if _point_key(point) not in have:
                    pending.append(Metric(key, point.value, point.timestamp, point.step))
                    have.add(_point_key(point))  # counted as there once its batch is sent
            while len(pending) >= MAX_METRICS:
                self.target.log_batch(target_id, metrics=pending[:MAX_METRICS])
                sent += MAX_METRICS
                del pending[:MAX_METRICS]
        if pending:
            self.target.log_batch(target_id, metrics=pending)
            sent += len(pending)
        self.counts["metrics"] = sent

    def _artifacts(self, target_id: str) -> None:
        """Files the target lacks (or has with another size), one by one, so a cut-off push
        resumes at the next file."""
        have = dict(_walk(self.target.list_artifacts, target_id))
        sent = 0
        with tempfile.TemporaryDirectory(prefix="agentnn-push-") as tmp:
            for path, size in _walk(self.source.list_artifacts, self.run_id):
                if have.get(path) == size:
                    continue
                local = self.source.download_artifacts(self.run_id, path, tmp)
                folder = os.path.dirname(path) or None
                self.target.log_artifact(target_id, local, folder)
                sent += 1
        self.counts["artifacts"] = sent

    # --- models and the registry -------------------------------------------------------------

    def _models(self, run: Run, experiment_id: str, target_id: str) -> None:
        """MLflow 3 LoggedModels of the run, with their files, params and tags."""
        source_models = _logged_models(self.source, run.info.experiment_id, self.run_id)
        if not source_models:
            return
        copies = {
            model.tags.get(SOURCE_MODEL_TAG): model
            for model in _logged_models(self.target, experiment_id, target_id)
        }
        sent = 0
        for model in source_models:
            copy = copies.get(model.model_id)
            if copy is None:
                tags = {k: v for k, v in model.tags.items() if k not in NOT_COPIED_MODEL_TAGS}
                copy = self.target.create_logged_model(
                    experiment_id, name=model.name, source_run_id=target_id,
                    tags={**tags, SOURCE_MODEL_TAG: model.model_id},
                    params=dict(model.params or {}), model_type=model.model_type,
                )
            self.model_ids[model.model_id] = copy.model_id
            self.model_locations[copy.model_id] = copy.artifact_location
            if str(copy.status) != "READY" and str(model.status) == "READY":
                self._model_files(model, copy, target_id)
                self.target.finalize_logged_model(copy.model_id, "READY")
                sent += 1
        self.counts["models"] = sent

    def _model_files(self, model: LoggedModel, copy: LoggedModel, target_id: str) -> None:
        """Download the model's folder and upload it with its MLmodel pointing at the copy."""
        import mlflow.artifacts
        from mlflow.models import Model

        with tempfile.TemporaryDirectory(prefix="agentnn-push-model-") as tmp:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=model.artifact_location, dst_path=tmp,
                tracking_uri=self.source.tracking_uri,
            )
            mlmodel = Path(local) / "MLmodel"
            if mlmodel.is_file():
                description = Model.load(str(mlmodel))
                description.model_id = copy.model_id
                description.run_id = target_id
                description.artifact_path = copy.artifact_location
                if getattr(description, "model_uuid", None):
                    description.model_uuid = copy.model_id
                description.save(str(mlmodel))
            self.target.log_model_artifacts(copy.model_id, local)

    def _registrations(self, target_id: str) -> None:
        """Versions the run registered get a version on the target too, and what surrounds them.

        For each version the run created: its tags and description, and the aliases that
        point at it (on the target they point at its copy); for each registered model those
        versions belong to, its tags and description. Where the target differs, the source wins
        for what it has: its tags are set, tags only the target has stay, a description the
        source has replaces the target's and an empty one leaves it, and an alias is moved to
        the copy even when it pointed elsewhere on the target. Nothing is removed: an alias
        deleted on the source stays on the target. Each is set only when the target lacks it,
        so a repeated push changes nothing.
        """
        versions = _search_versions(self.source, f"run_id = '{self.run_id}'")
        if not versions:
            return
        unmatched = _search_versions(self.target, f"run_id = '{target_id}'")  # earlier copies
        for version in sorted(versions, key=lambda v: int(v.version)):
            copy = _copy_of(version, unmatched)
            if copy is None:
                copy = self._new_version(version, target_id)
                if copy is None:
                    continue  # a model this push could not copy; nothing to point it at
            else:
                unmatched.remove(copy)
                self._version_details(version, copy)
            self.versions[(version.name, str(version.version))] = str(copy.version)
        for name in sorted({name for name, _ in self.versions}):
            self._registered_model(name)

    def _new_version(self, version: ModelVersion, target_id: str) -> ModelVersion | None:
        """A version on the target pointing at the copied model, or None without one."""
        from mlflow.exceptions import MlflowException

        source_model = version.model_id or (version.tags or {}).get(VERSION_MODEL_ID_TAG) \
            or _model_id_from_source(version.source)
        model_id = self.model_ids.get(source_model or "")
        if model_id is None:
            return None
        try:
            self.target.create_registered_model(version.name)
        except MlflowException as error:
            if not is_already_exists(error):
                raise
        # The storage location, not models:/<id>: MLflow's SQL registry resolves that
        # against the process-wide tracking URI rather than this client's.
        created = self.target.create_model_version(
            version.name, self.model_locations[model_id], run_id=target_id,
            model_id=model_id,
            tags={**_version_tags(version), VERSION_MODEL_ID_TAG: model_id},
            description=version.description,
            await_creation_for=REGISTRATION_WAIT_SECONDS,
        )
        self.registered.append(f"{version.name}/{created.version}")
        return created

    def _version_details(self, version: ModelVersion, copy: ModelVersion) -> None:
        """Tags and description of a version copied before, when the source's have changed."""
        have = copy.tags or {}
        for key, value in sorted(_version_tags(version).items()):
            if have.get(key) != value:
                self.target.set_model_version_tag(copy.name, str(copy.version), key, value)
                self.registry += 1
        if version.description and copy.description != version.description:
            self.target.update_model_version(copy.name, str(copy.version),
                                             description=version.description)
            self.registry += 1

    def _registered_model(self, name: str) -> None:
        """The registered model's tags and description, and its aliases that point at versions
        of this run, moved to their copies."""
        self.registry += copy_model_details(self.source, self.target, name)[1]
        source = self.source.get_registered_model(name)
        target = self.target.get_registered_model(name)
        aliases = {alias: str(number) for alias, number in (target.aliases or {}).items()}
        for alias, number in sorted((source.aliases or {}).items()):
            copied = self.versions.get((name, str(number)))
            if copied is not None and aliases.get(alias) != copied:
                self.target.set_registered_model_alias(name, alias, copied)
                self.aliases.append(f"{name}@{alias}")


def copy_model_details(source: MlflowClient, target: MlflowClient, name: str
                       ) -> tuple[bool, int]:
    """Registered model ``name`` on the target, created when missing, with the source's tags and
    description; returns (created, how many tags and descriptions were set).

    The source wins for what it has: its tags are set, tags only the target has stay, and its
    description replaces the target's unless it is empty. Nothing is set that the target has.
    """
    from mlflow.exceptions import MlflowException

    wanted = source.get_registered_model(name)
    created = False
    try:
        have = target.get_registered_model(name)
    except MlflowException as error:
        if not is_not_found(error):
            raise
        try:
            target.create_registered_model(name)
            created = True
        except MlflowException as exists:
            if not is_already_exists(exists):
                raise
        have = target.get_registered_model(name)
    set_here = 0
    for key, value in sorted((wanted.tags or {}).items()):
        if (have.tags or {}).get(key) != value:
            target.set_registered_model_tag(name, key, value)
            set_here += 1
    if wanted.description and have.description != wanted.description:
        target.update_registered_model(name, description=wanted.description)
        set_here += 1
    return created, set_here


# --- small helpers -------------------------------------------------------------------------


def _get_run(client: MlflowClient, run_id: str) -> Run:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as error:
        if is_not_found(error, lookup=True):
            raise NotFoundError("run", run_id) from None
        raise


def _children(client: MlflowClient, run_id: str) -> list[str]:
    """Ids of the runs nested directly under ``run_id``, oldest first."""
    from mlflow.entities import ViewType

    experiment_id = client.get_run(run_id).info.experiment_id
    found: list[str] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string=f"tags.`{PARENT_RUN_TAG}` = '{run_id}'",
            run_view_type=ViewType.ACTIVE_ONLY, order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        found.extend(run.info.run_id for run in page)
        token = page.token
        if not token:
            return found


def _target_experiment(client: MlflowClient, name: str) -> str:
    """The target's experiment of that name, created when missing."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name)
        except MlflowException as error:
            if not is_already_exists(error):
                raise
            experiment = client.get_experiment_by_name(name)
    assert experiment is not None  # found, or created meanwhile by another process
    if experiment.lifecycle_stage == "deleted":
        raise TrackingError(
            f"experiment {name!r} is deleted on the target store; restore it there "
            f"(`mlflow experiments restore --experiment-id {experiment.experiment_id}`) to push"
        )
    return experiment.experiment_id


def _find_copy(client: MlflowClient, experiment_id: str, source_run_id: str) -> str | None:
    from mlflow.entities import ViewType

    found = client.search_runs(
        [experiment_id], filter_string=f"tags.`{SOURCE_RUN_TAG}` = '{source_run_id}'",
        run_view_type=ViewType.ALL, max_results=1,
    )
    return found[0].info.run_id if found else None


def _point_key(point: Metric) -> tuple[int, int, str]:
    """A metric point's identity; NaN compares equal to NaN here."""
    value = point.value
    text = "nan" if isinstance(value, float) and math.isnan(value) else repr(float(value))
    return int(point.step), int(point.timestamp), text


def _walk(lister: Callable[[str, str | None], list[FileInfo]], run_id: str,
          path: str | None = None) -> Iterator[tuple[str, int | None]]:
    """(path, size) of every artifact file of a run, recursively."""
    for info in lister(run_id, path):
        if info.is_dir:
            yield from _walk(lister, run_id, info.path)
        else:
            yield info.path, info.file_size


def _logged_models(client: MlflowClient, experiment_id: str, run_id: str) -> list[LoggedModel]:
    """LoggedModels whose source run is ``run_id``; none on stores older than MLflow 3."""
    models: list[LoggedModel] = []
    token = None
    try:
        while True:
            page = client.search_logged_models(
                experiment_ids=[experiment_id], filter_string=f"source_run_id = '{run_id}'",
                page_token=token,
            )
            models.extend(page)
            token = page.token
            if not token:
                break
    except Exception as error:
        if is_unsupported(error):
            return []
        raise
    return sorted(models, key=lambda model: model.creation_timestamp or 0)


def _search_versions(client: MlflowClient, filter_string: str) -> list[ModelVersion]:
    versions: list[ModelVersion] = []
    token = None
    while True:
        page = client.search_model_versions(filter_string, page_token=token)
        versions.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return versions


def _version_tags(version: ModelVersion) -> dict[str, str]:
    """The tags a version's copy carries: the source's, plus the source's version number
    (how a later push finds the copy); the model id tag is set per store."""
    tags = {k: v for k, v in (version.tags or {}).items() if k not in NOT_COPIED_VERSION_TAGS}
    return {**tags, SOURCE_VERSION_TAG: str(version.version)}


def _copy_of(version: ModelVersion, copies: list[ModelVersion]) -> ModelVersion | None:
    """The target's copy of ``version`` among the versions of the copied run, or None.

    A copy is known by its :data:`SOURCE_VERSION_TAG`; a copy made before that tag existed
    (then a push made one version per name and run, of the run's first) is the oldest of the
    same name without it.
    """
    same_name = sorted((copy for copy in copies if copy.name == version.name),
                       key=lambda copy: int(copy.version))
    for copy in same_name:
        if (copy.tags or {}).get(SOURCE_VERSION_TAG) == str(version.version):
            return copy
    untagged = [copy for copy in same_name if SOURCE_VERSION_TAG not in (copy.tags or {})]
    return untagged[0] if untagged else None


def _model_id_from_source(source: str | None) -> str | None:
    if source and source.startswith("models:/m-"):
        return source[len("models:/"):].split("/")[0]
    return None


def pending_run_ids(client: MlflowClient) -> list[tuple[str, str]]:
    """(run id, masked intended URI) of every run of the store tagged ``agentnn.push=pending``."""
    from mlflow.entities import ViewType

    experiment_ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    if not experiment_ids:
        return []
    found: list[tuple[str, str]] = []
    token = None
    while True:
        page = client.search_runs(
            experiment_ids, filter_string=f"tags.`{PUSH_TAG}` = '{PUSH_PENDING}'",
            run_view_type=ViewType.ACTIVE_ONLY, order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        found.extend((run.info.run_id, run.data.tags.get(INTENDED_URI_TAG, "")) for run in page)
        token = page.token
        if not token:
            return found


# --- pending pushes the writer works on ----------------------------------------------------


@dataclass(frozen=True)
class PendingPush:
    """A run kept in a fallback store that should reach its intended store.

    The marker file holds the real URIs (credentials included), like the journal header
    does, so it is readable by its owner only and never enters a store.
    """

    run_id: str
    source_uri: str
    intended_uri: str
    path: Path

    @classmethod
    def write(cls, journal_dir: Path, run_id: str, source_uri: str, intended_uri: str
              ) -> PendingPush:
        journal_dir.mkdir(parents=True, exist_ok=True)
        path = journal_dir / f"{run_id}{MARKER_SUFFIX}"
        tmp = path.with_suffix(".push-tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"run_id": run_id, "source_uri": source_uri,
                       "intended_uri": intended_uri}, handle)
        os.replace(tmp, path)
        return cls(run_id, source_uri, intended_uri, path)

    @classmethod
    def all(cls, journal_dir: Path) -> list[PendingPush]:
        found = []
        for path in sorted(journal_dir.glob(f"*{MARKER_SUFFIX}")):
            try:
                data = json.loads(path.read_text())
                found.append(cls(data["run_id"], data["source_uri"], data["intended_uri"], path))
            except (OSError, ValueError, KeyError):
                continue  # being written, or removed by a push that just finished
        return found

    @classmethod
    def find(cls, journal_dir: Path, run_id: str) -> PendingPush | None:
        return next((p for p in cls.all(journal_dir) if p.run_id == run_id), None)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def store_answers(uri: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """One quick probe of a store: does it answer at all (auth may guard /health)?

    A server gets one connect-and-first-byte budget of ``timeout``; a database (PostgreSQL,
    MySQL) one connection with that connect timeout, because MLflow's own engine creation
    retries a dead database for about 100 s and would hold the pusher that long.
    """
    if uri.startswith(("http://", "https://")):
        return ServerProbe.of(uri, timeout).answers()
    if uri.startswith(("postgresql", "mysql", "mssql")):
        from agentnn.mlflow_integration.store.client import Store

        return Store.from_settings(config.resolve(uri)).probe(timeout, full=False).reachable
    return True


class AutoPusher:
    """The writer's part: push each pending run once its intended store answers.

    ``step()`` is cheap when there is nothing to do (one folder scan) and never blocks for long:
    a store that does not answer is probed with back-off, and a run still going is pushed again
    at most every :data:`LIVE_PUSH_INTERVAL` seconds (longer when a push takes long).
    """

    def __init__(self, journal_dir: Path, log: Callable[[str], None] | None = None) -> None:
        self.journal_dir = journal_dir
        self._clients: dict[str, MlflowClient] = {}
        self._log = log or logger.info  # the writer passes its own log
        self._next_try: dict[str, float] = {}  # run id -> monotonic time of the next attempt
        self._backoff: dict[str, float] = {}
        self._given_up: set[str] = set()
        self._live: dict[str, float] = {}  # running run id -> when to look at its status again
        self._known: dict[str, dict[str, set[tuple[int, int, str]]]] = {}  # see push_run
        self._notes: dict[str, str] = {}  # run id -> the note on the local run (see _note)

    def step(self) -> bool:
        """Push what is due; True while some pending run has not fully reached its store."""
        for pending in PendingPush.all(self.journal_dir):
            if pending.run_id in self._given_up:
                continue
            now = time.monotonic()
            if now < self._next_try.get(pending.run_id, 0.0) and not self._ended(pending, now):
                continue
            if not store_answers(pending.intended_uri):
                self._retry_later(pending, "does not answer")
                continue
            started = time.monotonic()
            try:
                result = push_run(
                    self._client(pending.source_uri), self._client(pending.intended_uri),
                    pending.run_id, target_label=mask_uri(pending.intended_uri),
                    lock_dir=self.journal_dir,
                    known_points=self._known.setdefault(pending.run_id, {}),
                )
            except Exception as error:
                self._known.pop(pending.run_id, None)  # it may count points that were not sent
                self._live.pop(pending.run_id, None)
                outcome = classify(error)
                if outcome in NEEDS_A_PERSON:
                    self._wait_for_a_person(pending, outcome, error)
                elif outcome in TRANSIENT or outcome is Outcome.UNKNOWN:
                    self._retry_later(pending, f"failed ({_summary_line(error)})")
                else:
                    self._given_up.add(pending.run_id)
                    self._note(pending, f"refused ({_summary_line(error)}); "
                                        "`agentnn model push --pending` tries again")
                    self._log(f"push of run {pending.run_id} refused: {error}; it stays pending "
                              "(`agentnn model push --pending` retries)")
                continue
            self._backoff.pop(pending.run_id, None)
            if result.complete:
                pending.remove()
                self._note(pending, None)
                self._known.pop(pending.run_id, None)
                self._live.pop(pending.run_id, None)
                self._log(f"pushed run {pending.run_id} to {result.target_uri} "
                          f"as {result.target_run_id}")
            else:
                took = time.monotonic() - started
                self._next_try[pending.run_id] = time.monotonic() + max(
                    LIVE_PUSH_INTERVAL, LIVE_PUSH_DUTY * took)
                self._live[pending.run_id] = time.monotonic() + STATUS_CHECK_INTERVAL
        return any(p.run_id not in self._given_up for p in PendingPush.all(self.journal_dir))

    def _ended(self, pending: PendingPush, now: float) -> bool:
        """True when a run pushed while it went has just ended: its last push is due now."""
        if pending.run_id not in self._live or now < self._live[pending.run_id]:
            return False
        self._live[pending.run_id] = now + STATUS_CHECK_INTERVAL
        try:
            status = self._client(pending.source_uri).get_run(pending.run_id).info.status
        except Exception:
            return False
        return status in TERMINAL_STATUSES

    def _client(self, uri: str) -> MlflowClient:
        if uri not in self._clients:
            from mlflow import MlflowClient

            self._clients[uri] = MlflowClient(tracking_uri=uri, registry_uri=uri)
        return self._clients[uri]

    def give_up(self, after: float) -> None:
        """The writer stops trying: each run still pending says so, and what it waited for."""
        for pending in PendingPush.all(self.journal_dir):
            last = self._notes.get(pending.run_id) or "no answer"
            why = (f"the writer stopped trying after {after:.0f} s ({last}); "
                   "`agentnn model push --pending` tries again")
            # The writer's last word: a busy local store gets a few more tries, as nothing
            # comes after it to write the note again.
            for attempt in range(GIVE_UP_NOTE_ATTEMPTS):
                if self._note(pending, why):
                    break
                time.sleep(0.5 * (attempt + 1))

    def _note(self, pending: PendingPush, why: str | None) -> bool:
        """Record on the local run why it is still pending (None: it is not any more); False
        when the local store did not take it.

        Written only when the reason changes: each note is a write to the local store.
        """
        if self._notes.get(pending.run_id) == why:
            return True
        try:
            source = self._client(pending.source_uri)
            if why is None:
                source.delete_tag(pending.run_id, PUSH_NOTE_TAG)
            else:
                source.set_tag(pending.run_id, PUSH_NOTE_TAG, why)
        except Exception as error:  # the note is a courtesy; the push must go on without it
            logger.debug("no push note on run %s: %s", pending.run_id, error)
            return False
        if why is None:
            self._notes.pop(pending.run_id, None)
        else:
            self._notes[pending.run_id] = why
        return True

    def _wait_for_a_person(self, pending: PendingPush, outcome: Outcome,
                           error: Exception) -> None:
        """Refused credentials or a missing permission: the run stays pending, tried again
        after a long back-off rather than hammering the server's password check."""
        what = ("refused the credentials" if outcome is Outcome.AUTHENTICATION
                else "denied the permission")
        self._log(f"push of run {pending.run_id}: {mask_uri(pending.intended_uri)} {what} "
                  f"({_summary_line(error)}); it stays pending, next try in "
                  f"{NEEDS_A_PERSON_BACKOFF:.0f}s (`agentnn model push --pending` tries now)")
        self._next_try[pending.run_id] = time.monotonic() + NEEDS_A_PERSON_BACKOFF
        self._note(pending, f"{mask_uri(pending.intended_uri)} {what}")

    def _retry_later(self, pending: PendingPush, why: str) -> None:
        backoff = self._backoff.get(pending.run_id, BACKOFF_START)
        if backoff < BACKOFF_MAX:  # quiet once at the longest wait: a log line per back-off step
            self._log(f"push of run {pending.run_id}: {mask_uri(pending.intended_uri)} {why}; "
                      f"next try in {backoff:.0f}s")
        self._next_try[pending.run_id] = time.monotonic() + backoff
        self._backoff[pending.run_id] = min(backoff * 2, BACKOFF_MAX)
        self._note(pending, f"{mask_uri(pending.intended_uri)} {why}")


def _summary_line(error: BaseException) -> str:
    """The first line of an error's text, cut to a log line's length."""
    text = str(error)
    return text.splitlines()[0][:200] if text else type(error).__name__
