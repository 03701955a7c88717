"""Metric curves of one or more runs as a PNG, drawn with matplotlib's Agg backend.

The curves arrive already downsampled (``ModelManager.metric_history(max_points=…)``), so a
million-point run draws as fast as a short one and its spikes still show.
"""

from __future__ import annotations

import importlib
import math
import threading
from pathlib import Path

from agentnn.errors import InvalidArgumentError
from agentnn.sdk._records import MetricPoint

FIGURE_SIZE_INCHES = (8.0, 5.0)
DPI = 100  # 8 x 5 inches at 100 dpi: an 800 x 500 pixel image
MARKERS_BELOW = 30  # points per curve under which each point gets a marker
RAW_ALPHA = 0.25  # the unsmoothed curve stays faintly visible behind the smoothed one
AGG_MODULE = "matplotlib.backends.backend_agg"


def preload_matplotlib() -> threading.Thread:
    """Import matplotlib on a thread while the curves are read.

    Its import takes about a second, as long as downsampling a million points; SQLite releases
    the GIL while it steps through a query, so on two cores the two overlap.
    """
    thread = threading.Thread(target=_import_quietly, name="agentnn-matplotlib-import",
                              daemon=True)
    thread.start()
    return thread


def _import_quietly() -> None:
    """A failed import is reported where matplotlib is used, on the main thread."""
    try:
        importlib.import_module(AGG_MODULE)
    except Exception:  # plot_curves imports it again and says what failed
        pass


def check_smoothing(smooth: float) -> None:
    if not 0.0 <= smooth < 1.0:
        raise InvalidArgumentError(
            f"smoothing must be at least 0 and below 1 (0 draws the raw curve), got {smooth}"
        )


def smoothed(values: list[float], weight: float) -> list[float]:
    """Exponential moving average with TensorBoard's bias correction; NaN points stay NaN."""
    result: list[float] = []
    average, steps = 0.0, 0
    for value in values:
        if math.isnan(value):
            result.append(value)
            continue
        steps += 1
        average = average * weight + (1 - weight) * value
        result.append(average / (1 - weight ** steps))
    return result


def plain_label(text: str) -> str:
    """A legend label matplotlib draws as written: ``$`` would start math mode."""
    return text.replace("$", r"\$")


def plot_curves(
    curves: dict[str, list[MetricPoint]],
    metric: str,
    path: Path,
    *,
    log_scale: bool = False,
    smooth: float = 0.0,
) -> Path:
    """Draw ``metric`` against step, one line per run label, and save it to ``path``."""
    check_smoothing(smooth)
    # The object API with the Agg canvas: no pyplot state, no GUI backend, a faster import.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGURE_SIZE_INCHES, dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    for label, points in curves.items():
        steps = [p.step for p in points]
        values = [p.value for p in points]
        marker = "o" if len(points) < MARKERS_BELOW else None
        if smooth:
            (raw,) = axes.plot(steps, values, alpha=RAW_ALPHA, linewidth=1)
            axes.plot(steps, smoothed(values, smooth), color=raw.get_color(),
                      marker=marker, markersize=3, label=plain_label(label))
        else:
            axes.plot(steps, values, marker=marker, markersize=3, label=plain_label(label))
    if log_scale:
        axes.set_yscale("log")  # points at or below zero are left out, as matplotlib does
    axes.set_xlabel("step")
    axes.set_ylabel(plain_label(metric))
    axes.set_title(plain_label(metric))
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, format="png")
    return path
