"""One snapshot of a run, or of an experiment's running runs, for ``agentnn model watch``.

Each metric comes from the store as a downsampled history (its extremes kept, so the best value
is exact) plus the points the run's local journal still holds; nothing loads a whole history.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

from agentnn.sdk._downsample import bucket_bounds
from agentnn.sdk._journal_view import unsent_points
from agentnn.sdk._records import MetricPoint, MetricWatch, RunInfo, RunWatch

CURVE_POINTS = 32  # values per sparkline
HISTORY_POINTS = 4 * CURVE_POINTS  # points read from the store per metric
# Metrics whose name holds one of these are better when lower; all others when higher.
LOWER_IS_BETTER = ("loss", "err", "mse", "mae", "perplexity", "ppl", "wer", "cer", "latency",
                   "time", "regret", "nll")

History = Callable[[str, str, int], list[MetricPoint]]


def goal_of(key: str) -> str:
    """``min`` for losses, errors and times; ``max`` otherwise (accuracy, reward, f1…)."""
    name = key.lower()
    return "min" if any(word in name for word in LOWER_IS_BETTER) else "max"


def curve(points: list[MetricPoint], width: int = CURVE_POINTS) -> list[float]:
    """``width`` values across the step range: the mean of each part, empty parts left out."""
    numbers = [p for p in points if not math.isnan(p.value)]
    if len(numbers) <= width:
        return [p.value for p in numbers]
    values: list[float] = []
    position = 0
    for _, hi in bucket_bounds(numbers[0].step, numbers[-1].step, width):
        part = []
        while position < len(numbers) and numbers[position].step < hi:
            part.append(numbers[position].value)
            position += 1
        if part:
            values.append(sum(part) / len(part))
    return values


def steps_per_second(histories: list[list[MetricPoint]]) -> float | None:
    """Steps per second over the run so far, from the metric that got furthest."""
    rates = []
    for points in histories:
        if len(points) >= 2:
            seconds = (points[-1].timestamp_ms - points[0].timestamp_ms) / 1000
            if seconds > 0:
                rates.append(((points[-1].step - points[0].step) / seconds,
                              points[-1].step))
    return round(max(rates, key=lambda rate: rate[1])[0], 3) if rates else None


def watch_run(run: RunInfo, history: History, journal_dir: Path | None) -> RunWatch:
    """The run's metrics (store plus local journal), elapsed time and speed."""
    pending, journal = unsent_points(journal_dir, run.run_id) if journal_dir else ({}, None)
    metrics, histories = [], []
    for key in sorted(set(run.metrics) | set(pending)):
        stored = history(run.run_id, key, HISTORY_POINTS) if key in run.metrics else []
        points = sorted(stored + pending.get(key, []),
                        key=lambda p: (p.step, p.timestamp_ms))
        if not points:
            continue
        histories.append(points)
        goal = goal_of(key)
        numbers = [p.value for p in points if not math.isnan(p.value)]
        best = (min(numbers) if goal == "min" else max(numbers)) if numbers else math.nan
        metrics.append(MetricWatch(
            key=key, latest=points[-1].value, latest_step=points[-1].step, best=best, goal=goal,
            curve=curve(points), pending=len(pending.get(key, [])),
        ))
    now_ms = int(time.time() * 1000)
    end_ms = run.end_time_ms or (now_ms if run.status == "RUNNING" else None)
    elapsed = round((end_ms - run.start_time_ms) / 1000, 1) if (
        end_ms is not None and run.start_time_ms is not None) else None
    return RunWatch(run=run, elapsed_s=elapsed, steps_per_s=steps_per_second(histories),
                    metrics=metrics, journal=str(journal) if journal else None)
