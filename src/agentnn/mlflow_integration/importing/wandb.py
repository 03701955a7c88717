"""Reader of W&B offline runs: ``wandb/offline-run-*`` and ``wandb/run-*`` folders.

Each run folder holds one ``run-<id>.wandb`` file, W&B's transaction log of the run's records.
It is read by the ``wandb`` package's own reader: the ``wandb-core`` program shipped inside the
package, as ``wandb-core leet inspect --json`` (what ``wandb leet inspect --json`` runs), which
prints one JSON object per record. Since wandb 0.22 the Python side no longer carries a reader of
the log (``wandb.sdk.internal.datastore`` is gone), so this is the one maintained reader there is;
``--no-observability`` keeps it off the network.

What lands where:

- **run record**: the run name is ``display_name`` (the run id when the run has none);
  ``source_id`` is ``<project>/<run id>``; the experiment is the caller's, else the W&B project
  (``uncategorized``, W&B's own name, when the run has none); tags ``wandb.run_id``,
  ``wandb.project`` and, when set, ``wandb.group`` and ``wandb.job_type``.
- **config** (at init and every later update) → params: nested dicts flattened with dots, the
  ``{"value": ...}`` wrapper removed, strings as they are and other values JSON-encoded
  (``0.1``, ``true``, ``[0.9, 0.99]``); ``_wandb`` (W&B's own bookkeeping) is left out.
- **history** → metrics: ``_step`` is the step, ``_timestamp`` (seconds) the time in ms. Only
  numbers become points; booleans, strings, lists and media (a histogram's ``h._type``, ...) are
  counted in one ``skipped`` line. wandb-core prints NaN and ±inf as the strings ``"NaN"``,
  ``"Infinity"`` and ``"-Infinity"``, so those three strings are read as the numbers they name
  (a string logged with that exact text comes back as a number too).
- **summary** → the final value of each key that never appeared in history: a number becomes a
  metric point at the run's last step and end time, anything else the tag
  ``wandb.summary.<key>`` (strings as they are, the rest JSON-encoded).
- **tags** → one tag ``wandb.tags`` holding the JSON list of the run's tags: W&B tags may hold
  characters MLflow refuses in a tag key, and a list keeps their order.
- **notes** → ``mlflow.note.content`` (the run's description in the MLflow UI).
- **exit record** → status: exit code 0 FINISHED, any other FAILED; no exit record KILLED (the
  process ended without finishing the run, or still runs: an imported copy would never finish).

A log cut mid-record (a run killed while writing, a partial copy) yields its readable records and
one line in ``SourceRun.skipped`` with wandb-core's words. A file with no readable run record
cannot be imported and raises :class:`~agentnn.errors.DataError` naming it.

``wandb`` is an optional extra (``pip install 'agentnn[import]'``); it is imported only when runs
are read, never to :meth:`WandbReader.detect` them.
"""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from agentnn.errors import DataError
from agentnn.mlflow_integration.importing.source import MetricSeries, SourceRun
from agentnn.mlflow_integration.run.validation import flatten

KIND = "wandb"
INSTALL_HINT = "pip install 'agentnn[import]'"

RUN_FILE_PATTERN = "run-*.wandb"
"""The transaction log inside a run folder."""
RUN_FOLDER_PATTERNS = ("offline-run-*", "run-*")
"""Run folders inside a ``wandb/`` folder (``latest-run`` is a link to one of them)."""

DEFAULT_PROJECT = "uncategorized"
"""W&B's name for the project of a run started without one."""

TAGS_TAG = "wandb.tags"
NOTE_TAG = "mlflow.note.content"
SUMMARY_TAG_PREFIX = "wandb.summary."

INTERNAL_KEYS = frozenset({"_step", "_timestamp", "_runtime"})
"""History and summary keys W&B writes itself; ``_wandb...`` keys are internal too."""

NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
"""How wandb-core's JSON spells the floats JSON has no literal for."""

READ_BUFFER_BYTES = 1 << 20
"""wandb-core's output is read in 1 MiB chunks (a million points print about 60 MB)."""

SKIPPED_KEYS_SHOWN = 10
"""How many keys of non-numeric history values the skipped line names."""


class WandbReader:
    """Finds W&B offline run folders under a path and reads each one whole."""

    kind = KIND

    def detect(self, path: Path) -> bool:
        """Whether ``path`` is a ``.wandb`` file, a run folder, a ``wandb/`` folder of runs or a
        folder holding ``wandb/`` (a path check only; ``wandb`` need not be installed)."""
        return bool(find_run_files(path))

    def runs(self, path: Path, experiment: str | None) -> Iterator[SourceRun]:
        """Every readable run under ``path``, in folder-name order.

        Raises:
            DataError: ``wandb`` is not installed; or, after every readable run was yielded,
                some run files could not be read at all (each named with the reason).
        """
        core = wandb_core_path()
        failures: list[str] = []
        for run_file in find_run_files(path):
            try:
                yield read_run_file(run_file, experiment, core)
            except DataError as error:
                failures.append(str(error))
        if failures:
            raise DataError("; ".join(failures), path=str(path))


def find_run_files(path: Path) -> list[Path]:
    """The ``run-<id>.wandb`` files ``path`` stands for, each once, sorted by path."""
    if path.is_file():
        return [path] if path.suffix == ".wandb" else []
    if not path.is_dir():
        return []
    found = list(path.glob(RUN_FILE_PATTERN))
    for wandb_dir in (path, path / "wandb"):
        for pattern in RUN_FOLDER_PATTERNS:
            found.extend(
                run_file
                for folder in wandb_dir.glob(pattern)
                if folder.is_dir() and not folder.is_symlink()
                for run_file in folder.glob(RUN_FILE_PATTERN)
            )
    unique = {run_file.resolve(): run_file for run_file in found if run_file.is_file()}
    return sorted(unique.values())


def wandb_core_path() -> str:
    """The ``wandb-core`` program of the installed ``wandb`` package."""
    try:
        from wandb.util import get_core_path
    except ImportError as error:
        raise DataError(
            f"reading W&B offline runs needs the wandb package: {INSTALL_HINT}"
        ) from error
    try:
        return get_core_path()
    except Exception as error:  # WandbCoreNotAvailableError: no binary for this platform
        raise DataError(f"the installed wandb package cannot read runs here: {error}") from error


def read_run_file(run_file: Path, experiment: str | None, core: str) -> SourceRun:
    """One run read whole from its ``.wandb`` file by wandb-core."""
    builder = _RunBuilder(run_file)
    command = [core, "leet", "inspect", "--no-observability", "--json",
               "--run-file", str(run_file), str(run_file.parent.parent)]
    # stderr goes to a file: a pipe left unread could fill and stall wandb-core mid-output.
    with tempfile.TemporaryFile() as stderr:
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr,
                              bufsize=READ_BUFFER_BYTES) as process:
            assert process.stdout is not None
            for line in process.stdout:
                builder.add(orjson.loads(line))
            returncode = process.wait()
        stderr.seek(0)
        complaint = " ".join(stderr.read().decode(errors="replace").split())
    if complaint:
        builder.skipped.append(f"{run_file}: {complaint}")
    if builder.run is None:
        reason = complaint or f"wandb-core exited with {returncode}"
        raise DataError(f"{run_file} holds no readable W&B run: {reason}", path=str(run_file))
    return builder.build(experiment)


class _RunBuilder:
    """Folds the records of one transaction log into the parts of a :class:`SourceRun`."""

    def __init__(self, run_file: Path) -> None:
        self.run_file = run_file
        self.run: dict[str, Any] | None = None
        self.config: dict[str, Any] = {}
        self.summary: dict[str, Any] = {}
        self.metrics: dict[str, MetricSeries] = {}
        self.history_keys: set[str] = set()
        self.non_numeric: dict[str, int] = {}
        self.last_step = 0
        self.last_timestamp_ms: int | None = None
        self.runtime_s = 0.0
        self.exit_code: int | None = None
        self.skipped: list[str] = []

    def add(self, record: dict[str, Any]) -> None:
        kind = record.get("type")
        body = record.get(kind) if isinstance(kind, str) else None
        if not isinstance(body, dict):
            return
        if kind == "history":
            self._add_history(body)
        elif kind == "summary":
            self._add_summary(body)
        elif kind == "run":
            self._add_run(body)
        elif kind == "config":
            self.config.update(body.get("update") or {})
        elif kind == "exit":
            self.exit_code = int(body.get("exit_code", 0))
            self.runtime_s = max(self.runtime_s, float(body.get("runtime", 0)))

    def _add_run(self, body: dict[str, Any]) -> None:
        """The first run record names the run; a later one (a resumed run) fills gaps."""
        self.config.update((body.get("config") or {}).get("update") or {})
        if self.run is None:
            self.run = dict(body)
        else:
            for key, value in body.items():
                self.run.setdefault(key, value)

    def _add_history(self, body: dict[str, Any]) -> None:
        item = body.get("item") or {}
        step = item.get("_step", (body.get("step") or {}).get("num", self.last_step))
        step = int(step)
        timestamp = item.get("_timestamp")
        if isinstance(timestamp, (int, float)):
            self.last_timestamp_ms = round(timestamp * 1000)
        timestamp_ms = self.last_timestamp_ms if self.last_timestamp_ms is not None else 0
        self.last_step = max(self.last_step, step)
        for key, value in flatten(item).items():
            if _is_internal(key):
                continue
            number = _as_number(value)
            if number is None:
                self.history_keys.add(key)
                self.non_numeric[key] = self.non_numeric.get(key, 0) + 1
                continue
            series = self.metrics.get(key)
            if series is None:
                series = self.metrics[key] = MetricSeries(key)
                self.history_keys.add(key)
            series.append(step, timestamp_ms, number)
        runtime = item.get("_runtime")
        if isinstance(runtime, (int, float)):
            self.runtime_s = max(self.runtime_s, float(runtime))

    def _add_summary(self, body: dict[str, Any]) -> None:
        self.summary.update(body.get("update") or {})
        for removed in body.get("remove") or []:
            if isinstance(removed, dict):
                self.summary.pop(str(removed.get("key")), None)

    def build(self, experiment: str | None) -> SourceRun:
        run = self.run or {}
        run_id = str(run.get("run_id") or self.run_file.stem.removeprefix("run-"))
        project = run.get("project") or None
        start_ms = _rfc3339_ms(run.get("start_time"))
        end_ms = self._end_time_ms(start_ms)
        source = SourceRun(
            kind=KIND,
            source_id=f"{project}/{run_id}" if project else str(self.run_file.parent),
            experiment=experiment or project or DEFAULT_PROJECT,
            run_name=run.get("display_name") or run_id,
            status=_status(self.exit_code),
            start_time_ms=start_ms,
            end_time_ms=end_ms,
            params=_params(self.config),
            tags=_run_tags(run, run_id),
            metrics=self.metrics,
            skipped=self.skipped,
        )
        self._add_final_summary(source, end_ms if end_ms is not None else 0)
        if self.non_numeric:
            keys = sorted(self.non_numeric)
            shown = ", ".join(keys[:SKIPPED_KEYS_SHOWN])
            if len(keys) > SKIPPED_KEYS_SHOWN:
                shown += ", ..."
            source.skipped.append(
                f"{sum(self.non_numeric.values())} non-numeric history values skipped "
                f"(keys: {shown})"
            )
        return source

    def _add_final_summary(self, source: SourceRun, timestamp_ms: int) -> None:
        """Summary keys never logged in history: numbers as points at the last step, the rest
        as tags."""
        for key, value in flatten(self.summary).items():
            if _is_internal(key) or key in self.history_keys:
                continue
            number = _as_number(value)
            if number is None:
                source.tags[SUMMARY_TAG_PREFIX + key] = _text(value)
            else:
                series = source.metrics[key] = MetricSeries(key)
                series.append(self.last_step, timestamp_ms, number)

    def _end_time_ms(self, start_ms: int | None) -> int | None:
        """The later of the last history time and the start plus the run's recorded runtime."""
        candidates = [self.last_timestamp_ms]
        if start_ms is not None:
            candidates.append(start_ms + round(self.runtime_s * 1000))
        known = [ms for ms in candidates if ms is not None]
        return max(known) if known else None


def _status(exit_code: int | None) -> str:
    if exit_code is None:
        return "KILLED"
    return "FINISHED" if exit_code == 0 else "FAILED"


def _run_tags(run: dict[str, Any], run_id: str) -> dict[str, str]:
    tags = {"wandb.run_id": run_id}
    for field in ("project", "group", "job_type"):
        if run.get(field):
            tags[f"wandb.{field}"] = str(run[field])
    if run.get("tags"):
        tags[TAGS_TAG] = json.dumps(list(run["tags"]), ensure_ascii=False)
    if run.get("notes"):
        tags[NOTE_TAG] = str(run["notes"])
    return tags


def _params(config: dict[str, Any]) -> dict[str, str]:
    """Config as flat string params; ``_wandb`` left out, ``{"value": ...}`` unwrapped."""
    unwrapped = {key: _unwrap(value) for key, value in config.items() if key != "_wandb"}
    return {key: _text(value) for key, value in flatten(unwrapped).items()}


def _unwrap(value: Any) -> Any:
    """W&B stores config items as ``{"value": v, "desc": ...}``; wandb-core may already have
    removed the wrapper, so only a dict of exactly those keys is unwrapped."""
    if isinstance(value, dict) and "value" in value and set(value) <= {"value", "desc"}:
        return value["value"]
    return value


def _is_internal(key: str) -> bool:
    return key in INTERNAL_KEYS or key.startswith("_wandb")


def _as_number(value: Any) -> float | None:
    """The float a history or summary value stands for, or None when it is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return NON_FINITE.get(value)
    return None


def _text(value: Any) -> str:
    """A value as MLflow keeps params and tags: strings as they are, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _rfc3339_ms(text: Any) -> int | None:
    """``2026-01-02T03:04:05.123456789Z`` as ms since the epoch (Python 3.10's
    ``fromisoformat`` takes neither ``Z`` nor nine fraction digits)."""
    if not isinstance(text, str) or not text:
        return None
    stamp = text.replace("Z", "+00:00")
    if "." in stamp:
        head, _, tail = stamp.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        stamp = f"{head}.{tail[:digits][:6].ljust(6, '0')}{tail[digits:]}"
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return round(moment.timestamp() * 1000)
