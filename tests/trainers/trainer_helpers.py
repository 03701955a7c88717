"""Small helpers the trainer tests share: reading back what a store holds."""

from __future__ import annotations

from typing import Any

TIMING_KEYS = {"epoch_time_s", "samples_per_s"}


class Interrupted(Exception):
    """Stands in for a crash in the middle of training."""


def run_count(client: Any) -> int:
    """Runs in every experiment of the store."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    return len(client.search_runs(experiments)) if experiments else 0


def history(client: Any, run_id: str, key: str) -> list[tuple[int, float]]:
    """(step, value) of a metric, in step order."""
    metrics = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
    return [(m.step, m.value) for m in metrics]
