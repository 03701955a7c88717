"""Copy a registered model to another store, whole: ``agentnn model push --model NAME``.

Every version's run is pushed with :func:`~agentnn.mlflow_integration.offline.push.push_run`,
which copies the run and the versions it registered (tags, description, the aliases pointing at
them, the registered model's tags and description). This module adds the order and the report.

Why the order matters: MLflow numbers a model's versions itself (the highest number ever used,
plus one; a deleted version's number is never used again). Runs are pushed in the order of their
versions, so on a target with no versions of that name versions 1, 2, 3 become 1, 2, 3 again.
Where that cannot hold (the target already has versions of that name, or the source has a gap
left by a deleted version) the result says so in one line and maps each old number to its new.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentnn.errors import NotFoundError
from agentnn.mlflow_integration.offline.push import (
    PushResult,
    copy_model_details,
    push_run,
)
from agentnn.mlflow_integration.store.classify import is_not_found

if TYPE_CHECKING:
    from mlflow import MlflowClient


@dataclass(frozen=True)
class VersionPush:
    """One version of a pushed registered model."""

    source_version: str
    target_version: str | None
    """Its number on the target; None when it could not be copied (``note`` says why)."""
    source_run_id: str | None
    target_run_id: str | None
    run_created: bool = False
    """True when this push created the copy of the version's run."""
    aliases: list[str] = field(default_factory=list)
    """The source's aliases of this version, pointing at its copy on the target."""
    note: str = ""


@dataclass(frozen=True)
class ModelPushResult:
    """What one push of a registered model did, version by version."""

    name: str
    target_uri: str
    """Masked."""
    versions: list[VersionPush]
    """Oldest first."""
    numbers_kept: bool
    """Every version has the same number on the target as on the source."""
    numbers: str
    """One line: the numbers were kept, or why not and how they map."""
    model_created: bool = False
    """True when this push created the registered model on the target."""
    details: int = 0
    """The registered model's tags and description set this time (beyond the runs' pushes)."""
    runs: list[PushResult] = field(default_factory=list)
    """Each run pushed, once, in the order of its first version."""

    @property
    def changed(self) -> bool:
        return bool(self.model_created or self.details or any(r.changed for r in self.runs))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "runs": [run.to_dict() for run in self.runs],
                "changed": self.changed}


def push_registered_model(
    source: MlflowClient,
    target: MlflowClient,
    name: str,
    *,
    target_label: str,
    lock_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ModelPushResult:
    """Copy registered model ``name`` from ``source`` to ``target``: every version (with its
    run), its aliases, tags and description; a repeated push changes nothing.

    ``target_label`` is the target's masked URI. ``progress(done, total)`` is called as
    versions are done. A version whose run is not on the source (registered from elsewhere,
    or its run deleted for good) cannot be copied; its entry says so.

    Raises:
        NotFoundError: no registered model ``name`` on the source.
    """
    from mlflow.exceptions import MlflowException

    try:
        model = source.get_registered_model(name)
    except MlflowException as error:
        if is_not_found(error, lookup=True):
            raise NotFoundError("registered model", name) from None
        raise
    versions = sorted(_versions(source, name), key=lambda v: int(v.version))
    had = sorted(int(v.version) for v in _versions(target, name))  # before this push
    aliases: dict[str, list[str]] = {}
    for alias, number in sorted((model.aliases or {}).items()):
        aliases.setdefault(str(number), []).append(alias)
    pushed: dict[str, PushResult] = {}
    done: list[VersionPush] = []
    if progress:
        progress(0, len(versions))
    for version in versions:
        number, run_id = str(version.version), version.run_id
        if not run_id:
            done.append(VersionPush(number, None, None, None,
                                    note="registered without a run; not copied"))
        else:
            if run_id not in pushed:
                try:
                    pushed[run_id] = push_run(source, target, run_id,
                                              target_label=target_label, lock_dir=lock_dir)
                except NotFoundError:
                    done.append(VersionPush(number, None, run_id, None,
                                            note="its run is not on the source; not copied"))
                    _report(progress, done, versions)
                    continue
            result = pushed[run_id]
            copied = result.versions.get(f"{name}/{number}")
            done.append(VersionPush(
                number, copied.rpartition("/")[2] if copied else None, run_id,
                result.target_run_id, run_created=result.created,
                aliases=aliases.get(number, []) if copied else [],
                note="" if copied else "its model could not be copied",
            ))
        _report(progress, done, versions)
    # A model without versions, or whose versions could not be copied, still gets its details.
    created, details = copy_model_details(source, target, name)
    kept = all(v.target_version == v.source_version for v in done)
    return ModelPushResult(
        name=name, target_uri=target_label, versions=done, numbers_kept=kept,
        numbers=_numbers_line(name, done, had, kept), model_created=created, details=details,
        runs=list(pushed.values()),
    )


def _report(progress: Callable[[int, int], None] | None, done: list[VersionPush],
            versions: list[Any]) -> None:
    if progress:
        progress(len(done), len(versions))


def _versions(client: MlflowClient, name: str) -> list[Any]:
    """Every version of ``name`` (none when the store has no such model)."""
    escaped = name.replace("'", "\\'")
    found: list[Any] = []
    token = None
    while True:
        page = client.search_model_versions(f"name = '{escaped}'", page_token=token)
        found.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return found


def _numbers_line(name: str, done: list[VersionPush], had: list[int], kept: bool) -> str:
    """Whether the version numbers were kept, said plainly; else why not, and old -> new."""
    if kept:
        return f"version numbers of {name} kept"
    moved = ", ".join(f"{v.source_version} -> {v.target_version or 'not copied'}"
                      for v in done if v.target_version != v.source_version)
    copies = {int(v.target_version) for v in done if v.target_version}
    others = [number for number in had if number not in copies]  # not copied from here
    if others:
        return (f"the target already had {_numbered(others)} of {name}, so the numbers "
                f"cannot be kept: {moved}")
    numbers = [int(v.source_version) for v in done]
    gaps = sorted(set(range(1, max(numbers, default=0))) - set(numbers))
    if gaps:
        verb = "was" if len(gaps) == 1 else "were"
        return (f"{_numbered(gaps)} of {name} {verb} deleted on the source and MLflow numbers "
                f"versions itself, so the numbers after the gap shift: {moved}")
    return f"some versions of {name} could not be copied, so the numbers shift: {moved}"


def _numbered(numbers: list[int]) -> str:
    """[1] as "version 1", [1, 2, 3, 5] as "versions 1-3, 5"."""
    spans: list[str] = []
    start = previous = None
    for number in [*numbers, None]:
        if number is not None and previous is not None and number == previous + 1:
            previous = number
            continue
        if start is not None:
            spans.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = number
    return ("version " if len(numbers) == 1 else "versions ") + ", ".join(spans)
