"""What every reader hands the import writer: runs as plain data, metrics as columns.

Why columns: a run from another tracker can hold millions of points, and the writer sends them
in bulk; parallel sequences of steps, times and values cost a fraction of one object per point.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

IMPORTED_FROM_TAG = "agentnn.imported_from"
"""``<kind>:<source id>`` on every imported run: how a second import finds the first."""


@dataclass
class MetricSeries:
    """One metric's history, as parallel columns of the same length."""

    key: str
    steps: list[int] = field(default_factory=list)
    timestamps_ms: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    """NaN and ±inf are kept as they are (MLflow stores them)."""

    def append(self, step: int, timestamp_ms: int, value: float) -> None:
        self.steps.append(step)
        self.timestamps_ms.append(timestamp_ms)
        self.values.append(value)

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class SourceRun:
    """One run read from another tool, ready to be written into MLflow."""

    kind: str
    """The source tool: ``tensorboard``, ``wandb`` or ``trackio``."""
    source_id: str
    """Stable id of the run in its source (a log folder's path, ``project/run id``): with
    ``kind`` it is the idempotency key stored in :data:`IMPORTED_FROM_TAG`."""
    experiment: str
    """The MLflow experiment it goes to (the caller's ``--experiment``, else the source's
    project or folder name)."""
    run_name: str | None = None
    status: str = "FINISHED"
    """An MLflow run status: FINISHED, FAILED, KILLED or RUNNING."""
    start_time_ms: int | None = None
    end_time_ms: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricSeries] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    """What could not be read (a damaged or half-written file, an unsupported record), one line
    each; the readable rest is imported."""

    @property
    def imported_from(self) -> str:
        return f"{self.kind}:{self.source_id}"

    @property
    def points(self) -> int:
        return sum(len(series) for series in self.metrics.values())


class Reader(Protocol):
    """A source tool's reader: finds its runs under a path and reads each whole."""

    kind: str

    def detect(self, path: Path) -> bool:
        """Whether ``path`` looks like this tool's output (used to pick a reader)."""
        ...

    def runs(self, path: Path, experiment: str | None) -> Iterator[SourceRun]:
        """Every run found under ``path``; a run that cannot be read at all raises
        :class:`~agentnn.errors.DataError` naming it (the caller reports it and goes on)."""
        ...
