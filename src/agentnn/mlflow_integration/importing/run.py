"""The import itself: each path to the reader that recognises it, each run to the writer.

Why each problem is one line and the import goes on: an import is often a folder of many runs
(years of TensorBoard logs, every W&B offline run); one damaged source must not stop the rest,
and its line says which one and why. A store that does not answer, or refuses the credentials,
stops the whole import instead (every run would fail the same way).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from agentnn.errors import AgentNNError, AuthenticationError, StoreUnreachableError
from agentnn.mlflow_integration.importing.source import Reader, SourceRun
from agentnn.mlflow_integration.importing.writer import ImportResult, write_run
from agentnn.mlflow_integration.store.client import Store

# Each reader module of this package and its reader class, asked in this order; a module that
# is not there (or whose optional package is missing at import) is left out. A new reader is
# one more line here.
READERS = (
    ("tensorboard", "TensorBoardReader"),
    ("wandb", "WandbReader"),
    ("trackio", "TrackioReader"),
)
SOURCE_KINDS = "a TensorBoard log folder, a W&B offline run or a trackio project"
STOP_ERRORS = (StoreUnreachableError, AuthenticationError)  # the store, not the source


def available_readers() -> list[Reader]:
    """The readers this installation has, in :data:`READERS` order."""
    readers: list[Reader] = []
    for module_name, class_name in READERS:
        try:
            module = importlib.import_module(f"{__package__}.{module_name}")
        except ImportError:
            continue
        reader = getattr(module, class_name, None)
        if reader is not None:
            readers.append(reader())
    return readers


def reader_for(path: Path, readers: Iterable[Reader]) -> Reader | None:
    """The first reader that recognises ``path``."""
    return next((reader for reader in readers if reader.detect(path)), None)


def import_sources(
    paths: Iterable[str | Path],
    store: Store,
    experiment: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[ImportResult]:
    """Import every run found at ``paths`` into ``store``; one :class:`ImportResult` per run,
    and one (with ``error`` set) per source or run that could not be imported.

    ``experiment`` puts every run into that experiment instead of the source's own (project or
    folder name). ``progress(done, total)`` counts points; the total grows as runs are read.

    Raises:
        StoreUnreachableError, AuthenticationError: the store does not answer or refuses us.
    """
    readers = available_readers()
    counter = _Progress(progress)
    results: list[ImportResult] = []
    for raw in paths:
        path = Path(raw).expanduser()
        label = str(raw)
        if not path.exists():
            results.append(_failed(label, experiment, f"{label}: no such file or folder"))
            continue
        reader = reader_for(path, readers)
        if reader is None:
            results.append(_failed(label, experiment, f"{label}: not {SOURCE_KINDS}"))
            continue
        for run, problem in _read(reader, path, experiment, label):
            if run is None:
                results.append(_failed(label, experiment, problem or label))
                continue
            counter.add_total(run.points)
            try:
                results.append(write_run(store, run, on_points=counter.add_done))
            except STOP_ERRORS:
                raise
            except AgentNNError as error:
                results.append(_failed(run.imported_from, run.experiment,
                                       f"{run.imported_from}: {error}"))
            counter.finish_run(run.points)
    return results


def _read(reader: Reader, path: Path, experiment: str | None,
          label: str) -> Iterator[tuple[SourceRun | None, str | None]]:
    """The reader's runs, and a line in place of whatever it could not read."""
    runs = reader.runs(path, experiment)
    while True:
        try:
            run = next(runs)
        except StopIteration:
            return
        except AgentNNError as error:
            yield None, str(error)
            return
        except Exception as error:  # a source the tool's own reader cannot read
            detail = str(error).strip().splitlines()
            yield None, (f"{label}: the {reader.kind} reader could not read it "
                         f"({type(error).__name__}: {detail[0] if detail else ''})")
            return
        yield run, None


def _failed(source: str, experiment: str | None, line: str) -> ImportResult:
    return ImportResult(source=source, experiment=experiment or "", error=line)


class _Progress:
    """Points done against points read so far, for ``progress(done, total)``."""

    def __init__(self, callback: Callable[[int, int], None] | None) -> None:
        self.callback = callback
        self.done = 0
        self.total = 0
        self.run_done = 0

    def add_total(self, points: int) -> None:
        self.total += points
        self.run_done = 0
        self._report()

    def add_done(self, points: int) -> None:
        self.done += points
        self.run_done += points
        self._report()

    def finish_run(self, points: int) -> None:
        """A run's points not sent (already stored, or the run failed) count as done."""
        self.done += max(0, points - self.run_done)
        self._report()

    def _report(self) -> None:
        if self.callback is not None:
            self.callback(self.done, self.total)
