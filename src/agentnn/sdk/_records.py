"""The plain data the SDK hands back: experiments, runs, metric points, comparisons, versions.

Both the ``agentnn model`` command and user code consume these. Each has ``to_dict()``, whose
keys are the documented, stable JSON of ``--output json``: times are ISO 8601 strings in UTC,
durations are seconds, and a value the run never recorded is ``None`` (JSON ``null``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

RUN_NAME_TAG = "mlflow.runName"
PARENT_RUN_TAG = "mlflow.parentRunId"


def iso_time(millis: int | None) -> str | None:
    """Milliseconds since the epoch as an ISO 8601 UTC string, or None when unknown."""
    if millis is None:
        return None
    return datetime.fromtimestamp(millis / 1000, tz=timezone.utc).isoformat(timespec="seconds")


def duration_seconds(start_ms: int | None, end_ms: int | None) -> float | None:
    """Seconds between start and end; None while a run has not ended or never started."""
    if start_ms is None or end_ms is None:
        return None
    return round((end_ms - start_ms) / 1000, 3)


@dataclass(frozen=True)
class ExperimentInfo:
    """One experiment with the facts the experiments table shows."""

    experiment_id: str
    name: str
    lifecycle_stage: str
    """``active`` or ``deleted``."""
    run_count: int
    """Runs that are not deleted."""
    last_run_ms: int | None
    """Start time of the newest run, milliseconds since the epoch; None without runs."""
    artifact_location: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "experiment_id": self.experiment_id,
            "name": self.name,
            "lifecycle_stage": self.lifecycle_stage,
            "run_count": self.run_count,
            "last_run": iso_time(self.last_run_ms),
            "artifact_location": self.artifact_location,
        }


@dataclass(frozen=True)
class RunInfo:
    """One run as listings show it: identity, status, times, latest metrics and params."""

    run_id: str
    run_name: str | None
    experiment_id: str
    status: str
    start_time_ms: int | None
    end_time_ms: int | None
    metrics: dict[str, float] = field(default_factory=dict)
    """Latest value of each metric; NaN when the run logged NaN."""
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    lifecycle_stage: str = "active"

    @property
    def duration_s(self) -> float | None:
        return duration_seconds(self.start_time_ms, self.end_time_ms)

    @property
    def parent_run_id(self) -> str | None:
        return self.tags.get(PARENT_RUN_TAG)

    @property
    def dataset(self) -> str | None:
        """The data set the run trained on (``digits``, ``synthetic``, a log's file name)."""
        from agentnn.mlflow_integration.run.datasets import dataset_of

        return dataset_of(self.params, self.tags)

    @property
    def push_note(self) -> str | None:
        """Why a run kept here during an outage is not on its server yet (the writer's note)."""
        from agentnn.mlflow_integration.offline.push import PUSH_NOTE_TAG

        return self.tags.get(PUSH_NOTE_TAG)

    def to_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "run_name": self.run_name,
            "experiment_id": self.experiment_id,
            "status": self.status,
            "lifecycle_stage": self.lifecycle_stage,
            "start_time": iso_time(self.start_time_ms),
            "end_time": iso_time(self.end_time_ms),
            "duration_s": self.duration_s,
            "parent_run_id": self.parent_run_id,
            "dataset": self.dataset,
            "metrics": dict(self.metrics),
            "params": dict(self.params),
            "tags": dict(self.tags),
        }


@dataclass(frozen=True)
class RunDetail:
    """Everything about one run: the listing facts plus artifacts and its family."""

    run: RunInfo
    experiment_name: str | None
    artifact_uri: str | None
    artifacts: list[str]
    """Artifact file paths relative to the run's artifact root."""
    child_run_ids: list[str]
    logged_model_ids: list[str]

    def to_dict(self) -> dict[str, object]:
        data = self.run.to_dict()
        data.update(
            experiment_name=self.experiment_name,
            artifact_uri=self.artifact_uri,
            artifacts=list(self.artifacts),
            child_run_ids=list(self.child_run_ids),
            logged_model_ids=list(self.logged_model_ids),
        )
        return data


@dataclass(frozen=True)
class MetricPoint:
    """One logged value of a metric."""

    step: int
    value: float
    timestamp_ms: int

    def to_dict(self) -> dict[str, object]:
        return {"step": self.step, "value": self.value, "timestamp": iso_time(self.timestamp_ms)}


@dataclass(frozen=True)
class RunComparison:
    """Params and final metrics of several runs side by side, and which keys differ."""

    runs: list[RunInfo]
    params: dict[str, list[str | None]]
    """Param name -> value per run, in the order of ``runs``; None where a run lacks it."""
    metrics: dict[str, list[float | None]]
    """Metric name -> final value per run; None where a run lacks it."""
    differing_params: list[str]
    differing_metrics: list[str]

    def to_dict(self) -> dict[str, object]:
        return {
            "run_ids": [run.run_id for run in self.runs],
            "run_names": [run.run_name for run in self.runs],
            "params": {key: list(values) for key, values in self.params.items()},
            "metrics": {key: list(values) for key, values in self.metrics.items()},
            "differing_params": list(self.differing_params),
            "differing_metrics": list(self.differing_metrics),
        }


def values_differ(values: Sequence[object]) -> bool:
    """True when not all values are equal; NaN equals NaN here, missing differs from present."""
    normalised = {
        "nan" if isinstance(value, float) and math.isnan(value) else value for value in values
    }
    return len(normalised) > 1


@dataclass(frozen=True)
class ModelVersionInfo:
    """One version of a registered model with its aliases and the metrics of its run."""

    name: str
    version: int
    aliases: list[str]
    run_id: str | None
    source: str | None
    status: str | None
    created_ms: int | None
    model_id: str | None = None
    run_metrics: dict[str, float] = field(default_factory=dict)
    stage: str | None = None
    """The deprecated registry stage, shown only when a server still uses them."""

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "aliases": list(self.aliases),
            "run_id": self.run_id,
            "source": self.source,
            "status": self.status,
            "created": iso_time(self.created_ms),
            "model_id": self.model_id,
            "run_metrics": dict(self.run_metrics),
            "stage": self.stage,
        }


@dataclass(frozen=True)
class MigrationReport:
    """What ``migrate`` moved from a legacy file store into the SQLite store."""

    source: str
    target_uri: str
    counts: dict[str, int]
    """Rows now in the SQLite store per kind: experiments, runs, params, metric points, …"""
    artifact_files: int
    """Artifact files the migrated runs point at; they stay where they are."""
    renamed_metadata: list[str]
    """Experiment ``meta.yaml`` files renamed (kept) so the folder stops reading as a file store."""

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "target_uri": self.target_uri,
            "counts": dict(self.counts),
            "artifact_files": self.artifact_files,
            "renamed_metadata": list(self.renamed_metadata),
        }


@dataclass(frozen=True)
class MetricWatch:
    """One metric of a watched run: its latest and best value and a short curve."""

    key: str
    latest: float
    latest_step: int
    best: float
    goal: str
    """``min`` or ``max``: the direction the metric's name suggests (loss down, accuracy up)."""
    curve: list[float]
    """A few dozen values across the whole history, for a sparkline (extremes kept)."""
    pending: int = 0
    """Points still in the local journal, not yet in the store (already counted above)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "latest": self.latest,
            "latest_step": self.latest_step,
            "best": self.best,
            "goal": self.goal,
            "curve": list(self.curve),
            "pending": self.pending,
        }


@dataclass(frozen=True)
class RunWatch:
    """One run as ``agentnn model watch`` shows it."""

    run: RunInfo
    elapsed_s: float | None
    """Seconds since the start; up to the end time once the run has ended."""
    steps_per_s: float | None
    """Steps per second over the run so far, from its most advanced metric."""
    metrics: list[MetricWatch]
    journal: str | None = None
    """The local journal read for points not yet in the store, if there is one."""

    @property
    def running(self) -> bool:
        return self.run.status in ("RUNNING", "SCHEDULED")

    def to_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run.run_id,
            "run_name": self.run.run_name,
            "experiment_id": self.run.experiment_id,
            "status": self.run.status,
            "start_time": iso_time(self.run.start_time_ms),
            "end_time": iso_time(self.run.end_time_ms),
            "elapsed_s": self.elapsed_s,
            "steps_per_s": self.steps_per_s,
            "journal": self.journal,
            "metrics": [metric.to_dict() for metric in self.metrics],
        }


@dataclass(frozen=True)
class WatchSnapshot:
    """What ``watch`` shows at one moment: one run, or the running runs of an experiment."""

    target: str
    """The run id or experiment asked for."""
    experiment: str | None
    """The experiment's name when an experiment is watched; None for a single run."""
    runs: list[RunWatch]
    taken_ms: int

    @property
    def running(self) -> bool:
        """True while something watched still runs; the live view ends when this turns False."""
        return any(run.running for run in self.runs)

    def to_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "experiment": self.experiment,
            "taken": iso_time(self.taken_ms),
            "running": self.running,
            "runs": [run.to_dict() for run in self.runs],
        }
