"""Shape-keeping downsampling of a metric history: bucket the steps, keep each bucket's extremes.

MLflow's UI draws at most 100,000 points of a chart and compares runs on 320 sampled points,
which can drop exactly the spike a user is looking for. Here the step range is cut into equal
buckets and each bucket keeps four points: its first and last (by step, then time) and its
smallest and largest value. So the global minimum and maximum and the first and last point
of the history always survive, and a curve of a million points draws from a few thousand.

The direct SQLite reader runs the same bucketing inside one SQL statement
(:data:`agentnn.sdk._sqlite_reader.BUCKETS_SQL`); this module is the fallback for every other
store (the history is fetched, then reduced) and the definition both follow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from agentnn.errors import InvalidArgumentError
from agentnn.sdk._records import MetricPoint

MIN_POINTS = 4  # first, last, minimum and maximum
POINTS_PER_BUCKET = 4  # the first bucket holds the global first point, the last the last


def check_max_points(max_points: int | None) -> None:
    """Refuse a budget too small to hold the first, last, minimum and maximum."""
    if max_points is not None and max_points < MIN_POINTS:
        raise InvalidArgumentError(
            f"max_points must be at least {MIN_POINTS} (first, last, min, max), got {max_points}"
        )


def bucket_count(max_points: int) -> int:
    """Buckets that fit the budget: four points each."""
    return max(1, max_points // POINTS_PER_BUCKET)


def bucket_bounds(first_step: int, last_step: int, buckets: int) -> list[tuple[int, int]]:
    """Half-open step ranges ``[lo, hi)`` covering ``first_step..last_step`` in equal parts."""
    span = last_step - first_step + 1
    return [
        (first_step + (index * span) // buckets, first_step + ((index + 1) * span) // buckets)
        for index in range(buckets)
    ]


def order_key(point: MetricPoint) -> tuple[int, int]:
    return point.step, point.timestamp_ms


def downsample(points: Sequence[MetricPoint], max_points: int | None) -> list[MetricPoint]:
    """At most ``max_points`` of ``points`` (sorted by step and time) keeping the shape.

    None or a budget the history fits in returns every point.
    """
    check_max_points(max_points)
    ordered = sorted(points, key=order_key)
    if max_points is None or len(ordered) <= max_points:
        return ordered
    kept: dict[int, MetricPoint] = {}  # index in ``ordered`` -> point; one entry per row
    bounds = bucket_bounds(ordered[0].step, ordered[-1].step, bucket_count(max_points))
    position = 0
    for _, hi in bounds:
        start = position
        while position < len(ordered) and ordered[position].step < hi:
            position += 1
        if start == position:
            continue
        members = range(start, position)
        kept[start] = ordered[start]
        kept[position - 1] = ordered[position - 1]
        numbers = [index for index in members if not math.isnan(ordered[index].value)]
        if numbers:
            low = min(numbers, key=lambda index: ordered[index].value)
            high = max(numbers, key=lambda index: ordered[index].value)
            kept[low], kept[high] = ordered[low], ordered[high]
    return [kept[index] for index in sorted(kept)]
