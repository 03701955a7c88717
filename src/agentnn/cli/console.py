"""Everything the command prints goes through here: styles, tables, JSON, one-line errors.

Rich is imported lazily so that ``agentnn --help`` stays fast.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO, TypedDict

if TYPE_CHECKING:
    from rich.console import Console, Group, RenderableType
    from rich.live import Live
    from rich.table import Table

    from agentnn.sdk.nn_models import WatchSnapshot

ERROR_PREFIX = "error:"
WARNING_PREFIX = "warning:"
STYLE_HEADER = "bold cyan"
STYLE_OK = "green"
STYLE_CHANGED = "bold yellow"
STYLE_MUTED = "dim"
OUTPUT_FORMATS = ("table", "json", "csv")
MIN_CELL_WIDTH = 6  # a column that gives way keeps at least this many characters per line


def stdout() -> Console:
    """A Rich console on stdout that fits the terminal."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def error_line(message: str) -> None:
    """One line on stderr; used for every user error so scripts can grep it."""
    print(f"{ERROR_PREFIX} {message}", file=sys.stderr)


def warn_line(message: str) -> None:
    print(f"{WARNING_PREFIX} {message}", file=sys.stderr)


def to_json(data: object) -> str:
    """Stable JSON: sorted keys, NaN/inf as strings so any parser reads it."""
    return json.dumps(_json_safe(data), indent=2, sort_keys=True, default=str)


def _json_safe(data: object) -> object:
    if isinstance(data, float) and (data != data or data in (float("inf"), float("-inf"))):
        return str(data)
    if isinstance(data, dict):
        return {str(key): _json_safe(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_json_safe(value) for value in data]
    return data


def to_csv(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def print_table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    output: str = "table",
    records: object = None,
    row_styles: Sequence[str | None] | None = None,
    no_wrap: Sequence[str] = (),
    truncate: Mapping[str, int] | None = None,
    optional: Sequence[str] = (),
) -> None:
    """Print rows as a Rich table, or as CSV/JSON; JSON prints ``records`` when given.

    ``row_styles`` gives a Rich style per row (e.g. :data:`STYLE_CHANGED` for values that
    differ); tables only, since CSV and JSON carry that fact in their own columns.
    The table fits the terminal (see :func:`fit_columns`): columns named in ``no_wrap`` (ids
    people copy) are never folded; those in ``truncate`` (long names) end in an ellipsis
    rather than wrap, keeping the width given; ``optional`` columns are left out, first
    named first, when the rest would otherwise be cut below :data:`MIN_CELL_WIDTH`.
    """
    cells = [[_cell(value) for value in row] for row in rows]
    if output == "json":
        records = records if records is not None else [dict(zip(columns, r)) for r in cells]
        print(to_json(records))
        return
    if output == "csv":
        sys.stdout.write(to_csv(columns, cells))
        return
    console = stdout()
    console.print(table(title, columns, cells, row_styles=row_styles, no_wrap=no_wrap,
                        truncate=truncate, optional=optional, width=console.width))


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    row_styles: Sequence[str | None] | None = None,
    no_wrap: Sequence[str] = (),
    truncate: Mapping[str, int] | None = None,
    optional: Sequence[str] = (),
    width: int | None = None,
) -> Table:
    """A Rich table of text cells; the one place user text enters a Rich renderable.

    Every cell, header and title may hold user text (run names, params, tags), so all are
    escaped: ``[/x]`` prints as itself instead of being read as Rich markup. With ``width``
    the columns are fitted to it by :func:`fit_columns`; without, Rich sizes them.
    """
    from rich.markup import escape
    from rich.table import Table

    cells = [list(row) for row in rows]
    truncate = truncate or {}
    keep = list(range(len(columns)))
    widths: list[int | None] = [None] * len(columns)
    if width is not None:
        keep, fitted = fit_columns(columns, cells, width, no_wrap=no_wrap, truncate=truncate,
                                   optional=optional)
        widths = list(fitted)
    result = Table(title=escape(title) if title else None, header_style=STYLE_HEADER,
                   expand=False)
    for index, column_width in zip(keep, widths):
        column = columns[index]
        if column in no_wrap:
            result.add_column(escape(column), no_wrap=True, min_width=len(column),
                              width=column_width)
        elif column in truncate:
            result.add_column(escape(column), no_wrap=True, overflow="ellipsis",
                              width=column_width)
        else:
            result.add_column(escape(column), overflow="fold", width=column_width)
    for row_index, row in enumerate(cells):
        result.add_row(*(escape(row[index]) for index in keep),
                       style=row_styles[row_index] if row_styles else None)
    return result


TABLE_BORDER = 1  # the left edge of a boxed table
COLUMN_OVERHEAD = 3  # per column: a space either side and the line on its right


def fit_columns(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int,
    *,
    no_wrap: Sequence[str] = (),
    truncate: Mapping[str, int] | None = None,
    optional: Sequence[str] = (),
) -> tuple[list[int], list[int]]:
    """Which columns to show and how wide, so a table fits ``width`` characters.

    Rich, left alone, squeezes every column evenly once the fixed ones take the room, down to
    two characters a line. Here each column has a floor: its full width for ``no_wrap`` ones,
    the width in ``truncate`` (or less, when its cells are shorter), else
    :data:`MIN_CELL_WIDTH`. ``optional`` columns are dropped, first named first, while the
    floors do not fit; then the widest columns give way, one character at a time, down to
    their floor. Returns the indexes of the columns kept and their widths.
    """
    from rich.cells import cell_len

    truncate = truncate or {}
    natural = [
        max([cell_len(column), *(max(map(cell_len, str(row[index]).splitlines() or [""]))
                                  for row in rows)])
        for index, column in enumerate(columns)
    ]
    floors = [
        value if column in no_wrap else min(value, truncate.get(column, MIN_CELL_WIDTH))
        for column, value in zip(columns, natural)
    ]
    keep = list(range(len(columns)))
    droppable = [columns.index(name) for name in optional if name in columns]

    def room() -> int:
        return width - TABLE_BORDER - COLUMN_OVERHEAD * len(keep)

    while droppable and sum(floors[index] for index in keep) > room():
        keep.remove(droppable.pop(0))
    widths = {index: natural[index] for index in keep}
    excess = sum(widths.values()) - room()
    while excess > 0:
        shrinkable = [index for index in keep if widths[index] > floors[index]]
        if not shrinkable:
            break  # even the floors do not fit: Rich squeezes what is left
        widest = max(shrinkable, key=lambda index: widths[index] - floors[index])
        widths[widest] -= 1
        excess -= 1
    return keep, [widths[index] for index in keep]


def print_json(data: object) -> None:
    """Stable JSON on stdout (see :func:`to_json`)."""
    print(to_json(data))


def message(text: str, style: str | None = None) -> None:
    """One human-readable line on stdout, e.g. what a command changed; printed as written
    (no markup, no emoji codes, never folded, so scripts can grep it)."""
    stdout().print(text, style=style, markup=False, emoji=False, soft_wrap=True)


def print_json_line(data: object) -> None:
    """Compact JSON on one line (JSON Lines), for output that repeats, e.g. a live view."""
    print(json.dumps(_json_safe(data), sort_keys=True, default=str), flush=True)


# --- what the library says while a command runs -------------------------------------------

LIBRARY_LOGGER = "agentnn"
DIAGNOSTIC_FORMAT = "agentnn: %(message)s"
DEBUG_FORMAT = "debug: %(name)s: %(message)s"


class _Installed(TypedDict, total=False):
    """What :func:`show_diagnostics` installed, so that a second call can replace it."""

    handler: logging.Handler
    other_warnings: Callable[[Warning | str, type[Warning], str, int, TextIO | None, str | None],
                             None]
    shown: set[str]
    """agentnn's one-time warnings already shown by this command."""


_diagnostics: _Installed = {}  # the handler installed and the warning display it replaced


def show_diagnostics(debug: bool = False) -> None:
    """Show on stderr what agentnn says while a command runs, one line each.

    The library leaves its output to the application (see
    :mod:`agentnn.mlflow_integration.experiment_tracking`); the command is one, so it shows:
    progress logged on the ``agentnn`` logger (e.g. ``agentnn: sending run … to the store…
    40%``), and agentnn's :class:`~agentnn.errors.TrackingWarning` as ``agentnn: warning: …``
    (the fallback store, records not confirmed or refused). ``debug`` (``--debug``) adds
    agentnn's debug log, e.g. why a fast path was not taken. Called again (a test runs many
    commands in one process), it replaces what it installed.
    """
    logger = logging.getLogger(LIBRARY_LOGGER)
    if "handler" in _diagnostics:
        logger.removeHandler(_diagnostics["handler"])
    handler = _CurrentStderrHandler()
    handler.setFormatter(logging.Formatter(DEBUG_FORMAT if debug else DIAGNOSTIC_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    _diagnostics["handler"] = handler
    _diagnostics["shown"] = set()
    if warnings.showwarning is not _show_warning:
        _diagnostics["other_warnings"] = warnings.showwarning
        warnings.showwarning = _show_warning
    from agentnn.errors import AgentNNDeprecationWarning, SettingIgnoredWarning

    # Python hides DeprecationWarning outside __main__; agentnn's own are for this user, once
    # each (a config is checked by the command and again by the trainer).
    warnings.filterwarnings("once", category=AgentNNDeprecationWarning)
    warnings.filterwarnings("once", category=SettingIgnoredWarning)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    """agentnn's own warnings as one line through the handler; others as Python shows them."""
    from agentnn.errors import AgentNNDeprecationWarning, SettingIgnoredWarning, TrackingWarning

    if issubclass(category, (SettingIgnoredWarning, AgentNNDeprecationWarning)):
        # Once per command: a config is checked by the command and again by the trainer, and
        # libraries the command imports may install filters of their own.
        seen = _diagnostics.setdefault("shown", set())
        if str(message) in seen:
            return
        seen.add(str(message))
    if issubclass(category, (TrackingWarning, SettingIgnoredWarning, AgentNNDeprecationWarning)):
        logging.getLogger(LIBRARY_LOGGER).warning("%s %s", WARNING_PREFIX, message)
    else:
        _diagnostics["other_warnings"](message, category, filename, lineno, file, line)


class _CurrentStderrHandler(logging.Handler):
    """A logging handler that writes to ``sys.stderr`` as it is at each line (a test runner
    swaps it for every command), rather than as it was when the handler was made."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # logging's own rule: a failing handler never raises
            self.handleError(record)


# --- the live view of `agentnn model watch` ------------------------------------------------

SPARK_CHARS = "▁▂▃▄▅▆▇█"
STYLE_RUNNING = "bold green"
STYLE_ENDED = "bold"


def sparkline(values: Sequence[float]) -> str:
    """Values as a row of block characters, lowest to highest."""
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        return SPARK_CHARS[len(SPARK_CHARS) // 2] * len(values)
    top = len(SPARK_CHARS) - 1
    return "".join(SPARK_CHARS[round((value - low) / (high - low) * top)] for value in values)


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:.3g} steps/s"


def _elapsed(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def watch_view(snapshot: WatchSnapshot) -> Group:
    """One renderable for a :class:`~agentnn.sdk.nn_models.WatchSnapshot`: a table per run."""
    from rich.console import Group
    from rich.text import Text

    parts: list[RenderableType] = []
    heading = (f"experiment {snapshot.experiment}" if snapshot.experiment
               else f"run {snapshot.target}")
    running = sum(run.running for run in snapshot.runs)
    parts.append(Text(f"{heading}: {running} running", style=STYLE_HEADER))
    if not snapshot.runs:
        parts.append(Text("no runs yet", style=STYLE_MUTED))
    for watched in snapshot.runs:
        run = watched.run
        name = run.run_name or run.run_id[:8]
        title = (f"{name} ({run.run_id})  {run.status}  {_elapsed(watched.elapsed_s)}  "
                 f"{_rate(watched.steps_per_s)}").rstrip()
        rows = [
            [metric.key, _cell(metric.latest), str(metric.latest_step),
             f"{_cell(metric.best)} ({metric.goal})", sparkline(metric.curve),
             str(metric.pending) if metric.pending else ""]
            for metric in watched.metrics
        ]
        run_table = table(title, ["metric", "latest", "step", "best", "curve", "in journal"],
                          rows, no_wrap=["curve"])
        run_table.title_style = STYLE_RUNNING if watched.running else STYLE_ENDED
        parts.append(run_table)
    parts.append(Text(f"taken {snapshot.to_dict()['taken']}", style=STYLE_MUTED))
    return Group(*parts)


def print_renderable(renderable: RenderableType) -> None:
    stdout().print(renderable)


def is_terminal() -> bool:
    """True when stdout is a terminal, where a view can redraw in place."""
    return bool(stdout().is_terminal)


def live() -> Live:
    """A Rich Live display on stdout that the watch loop updates in place."""
    from rich.live import Live

    return Live(console=stdout(), auto_refresh=False, transient=False)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@contextmanager
def progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr while a command works through a list; yields
    ``update(done, total)``. It is cleared when done, so stdout keeps only the result."""
    from rich.progress import Progress

    with Progress(console=stderr(), transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
