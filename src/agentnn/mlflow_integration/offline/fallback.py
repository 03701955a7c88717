"""The fallback at run start: a tracking server that does not answer never stops training.

Agent-NN documents that tracking falls back to a local ``mlruns/`` folder when the connection
is missing. With ``AGENTNN_OFFLINE=fallback`` (the default) a run whose store does not answer
starts in the embedded store (``./mlruns/mlflow.db``), tagged ``agentnn.push=pending`` and
``agentnn.intended_tracking_uri`` (masked); a marker file beside the journals tells the writer
where to push it once the server answers (see :mod:`agentnn.mlflow_integration.offline.push`).
``AGENTNN_OFFLINE=fail`` keeps the one-line error instead.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from agentnn import config
from agentnn.errors import TrackingError, TrackingWarning
from agentnn.mlflow_integration.offline.model_push import ModelPushResult, push_registered_model
from agentnn.mlflow_integration.offline.push import (
    INTENDED_URI_TAG,
    MARKER_SUFFIX,
    PUSH_PENDING,
    PUSH_TAG,
    PendingPush,
    PushResult,
    pending_run_ids,
    push_run,
    pushed_result,
    run_lock,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from agentnn.mlflow_integration.store.client import Store

FALLBACK, FAIL = "fallback", "fail"
RUN_START_PROBE_TIMEOUT = 10.0  # seconds a known server gets to answer when a run starts;
# a basic-auth server hashes the password on every request, seconds on a busy machine


def falls_back(settings: config.Settings) -> bool:
    """True unless ``AGENTNN_OFFLINE=fail`` asks for the error instead."""
    offline = getattr(settings, "offline", None)
    return offline is None or offline.value != FAIL


def warn_fallback(intended: config.Setting, local_uri: str, reason: str) -> None:
    """The one warning: both stores, masked, and what happens next.

    A :class:`~agentnn.errors.TrackingWarning`: the run goes on, but its caller should know
    where it is (the ``agentnn`` command shows it as one ``warning:`` line).
    """
    warnings.warn(
        f"tracking store {config.mask_uri(intended.value)!r} (from "
        f"{intended.source}): {reason}; the run is tracked in {local_uri} and pushed there "
        "once it answers (AGENTNN_OFFLINE=fail stops instead)",
        TrackingWarning,
        stacklevel=4,  # the line that created the ExperimentTracker
    )


def pending_tags(intended_uri: str) -> dict[str, str]:
    """Tags of a run kept locally: where it belongs (masked) and that it is not there yet."""
    return {INTENDED_URI_TAG: config.mask_uri(intended_uri), PUSH_TAG: PUSH_PENDING}


def record_pending(journal_dir: Path, run_id: str, local_uri: str, intended_uri: str) -> None:
    """Tell the writer to push the run (the marker holds the real URIs, owner-readable only)."""
    PendingPush.write(journal_dir, run_id, local_uri, intended_uri)


# --- pushing on demand ---------------------------------------------------------------------


def intended_store_uri(settings: config.Settings, run_id: str, masked: str) -> str | None:
    """The real URI a pending run belongs to, or None when it cannot be known here.

    The store only holds the masked form; the writer's marker file holds the real one, and
    else the current settings do when their URI masks to the same text.
    """
    marker = PendingPush.find(Path(settings.journal_dir.value), run_id)
    if marker is not None and config.mask_uri(marker.intended_uri) == masked:
        return marker.intended_uri
    if masked and config.mask_uri(settings.tracking_uri.value) == masked:
        return settings.tracking_uri.value
    return None


def push_pending(
    settings: config.Settings,
    progress: Callable[[int, int], None] | None = None,
) -> list[PushResult]:
    """Push every pending run of the embedded store to its intended store, now.

    Each run is pushed under the same per-run lock the writer takes; a run the writer pushed
    meanwhile is reported as pushed (from its tags), not pushed again or taken for unknown.

    Raises:
        TrackingError: some pending run names a store whose real URI is not known here
            (the others are pushed first).
    """
    from agentnn.mlflow_integration.store.client import Store

    local = Store.from_settings(config.embedded_settings(settings))
    path = local.sqlite_path
    if path is None or not path.is_file():
        return []
    source = local.client()
    with local.errors():
        pending = pending_run_ids(source)
    targets: dict[str, Store] = {}
    unknown: list[tuple[str, str]] = []
    results: list[PushResult] = []
    lock_dir = Path(settings.journal_dir.value)
    if progress:
        progress(0, len(pending))
    for run_id, masked in pending:
        # The writer may be pushing the same run: take its lock, then look again.
        with run_lock(lock_dir, run_id):
            with local.errors(kind="run", name=run_id):
                done = pushed_result(source, run_id)
            uri = None if done else intended_store_uri(settings, run_id, masked)
            if done is not None:
                results.append(done)
            elif uri is None:
                unknown.append((run_id, masked))
            else:
                target = targets.setdefault(uri, Store.from_settings(
                    dataclasses.replace(settings, tracking_uri=config.Setting(uri, "argument"),
                                        artifact_location=None)))
                with target.errors(kind="run", name=run_id):
                    results.append(push_run(source, target.client(), run_id,
                                            target_label=target.masked_uri))
                if results[-1].complete:
                    PendingPush(run_id, "", "", lock_dir / f"{run_id}{MARKER_SUFFIX}").remove()
        if progress:
            progress(len(results) + len(unknown), len(pending))
    if unknown:
        names = ", ".join(f"{run_id} -> {masked or '?'}" for run_id, masked in unknown)
        raise TrackingError(
            f"{len(unknown)} pending run(s) belong to a store whose full URI (with credentials) "
            f"is not known here: {names}; set MLFLOW_TRACKING_URI to it, or use "
            "`agentnn model push RUN_ID --to URI`"
        )
    return results


def push_runs(
    source: MlflowClient,
    run_ids: list[str],
    to: str,
    settings: config.Settings,
    progress: Callable[[int, int], None] | None = None,
    *,
    create: bool = False,
) -> list[PushResult]:
    """Copy ``run_ids`` from ``source`` to the store ``to`` (its URI, credentials included).

    A target, like a read, must exist: a ``sqlite:///`` path with no store there is refused
    (:class:`StoreNotFoundError`, with the nearest store as a suggestion) unless ``create``
    asks for a new store on purpose, so a typo never receives runs nor marks them pushed.
    """
    target = _target_store(to, settings, create=create)
    client = target.client()
    lock_dir = Path(settings.journal_dir.value)
    results: list[PushResult] = []
    if progress:
        progress(0, len(run_ids))
    for run_id in run_ids:
        with target.errors(kind="run", name=run_id):
            results.append(push_run(source, client, run_id, target_label=target.masked_uri,
                                    lock_dir=lock_dir))
        if progress:
            progress(len(results), len(run_ids))
    return results


def push_model(
    source: MlflowClient,
    name: str,
    to: str,
    settings: config.Settings,
    progress: Callable[[int, int], None] | None = None,
    *,
    create: bool = False,
) -> ModelPushResult:
    """Copy registered model ``name`` from ``source`` to the store ``to``, whole (see
    :func:`~agentnn.mlflow_integration.offline.model_push.push_registered_model`); the target
    must exist as in :func:`push_runs`."""
    target = _target_store(to, settings, create=create)
    with target.errors(kind="registered model", name=name):
        return push_registered_model(
            source, target.client(), name, target_label=target.masked_uri,
            lock_dir=Path(settings.journal_dir.value), progress=progress,
        )


def _target_store(to: str, settings: config.Settings, *, create: bool) -> Store:
    """The store a push goes to, checked: it answers to its scheme, and exists unless
    ``create``."""
    from agentnn.mlflow_integration.store.client import Store

    target_settings = config.resolve(to, journal_dir=settings.journal_dir.value, cwd=settings.cwd)
    target = Store.from_settings(target_settings)
    target.validate()
    if not create:
        target.require_existing()
    return target
