"""Metric curves of one or more runs as a PNG, drawn with matplotlib's Agg backend."""

from __future__ import annotations

from pathlib import Path

from agentnn.sdk._records import MetricPoint

FIGURE_SIZE_INCHES = (8.0, 5.0)
DPI = 100  # 8 x 5 inches at 100 dpi: an 800 x 500 pixel image


def plot_curves(
    curves: dict[str, list[MetricPoint]], metric: str, path: Path
) -> Path:
    """Draw ``metric`` against step, one line per run label, and save it to ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=FIGURE_SIZE_INCHES, dpi=DPI)
    try:
        for label, points in curves.items():
            axes.plot([p.step for p in points], [p.value for p in points],
                      marker="o" if len(points) < 30 else None, markersize=3, label=label)
        axes.set_xlabel("step")
        axes.set_ylabel(metric)
        axes.set_title(metric)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize="small")
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=DPI, format="png")
    finally:
        plt.close(figure)
    return path
