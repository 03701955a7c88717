"""Which metrics say how good a run is, in the order a table should show them.

A run logs a dozen metrics, most of them bookkeeping (``lr``, ``epoch_time_s``,
``best_epoch``). A table has room for two or three, so they are chosen by what the run's
trainer reports as its objective: each trainer's headline metrics first (``val_acc`` for the
advanced trainer, as the quickstart prints it), then the accuracies and losses any run may
log, then the rest by how many runs logged them, bookkeeping last.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from agentnn.sdk._records import RunInfo

TRAINER_TAG = "trainer"
# What each trainer reports as its objective, best first (see the trainers' docstrings).
TRAINER_OBJECTIVES: dict[str, tuple[str, ...]] = {
    "advanced_training": ("val_acc", "test_acc", "val_success_acc", "test_success_acc",
                          "val_loss"),
    "multi_task_learning": ("val_agent_acc", "test_agent_acc", "val_loss"),
    "online_learning": ("val_acc", "val_loss", "drift"),
    "distributed_training": ("val_acc", "test_acc", "val_loss"),
    "architecture_optimization": ("best_val_acc", "test_acc", "best_val_loss"),
    "model_management": ("calls", "load_time_s"),
}
# Metrics with these names rank first on runs whose trainer is not known (other tools' runs).
COMMON_OBJECTIVES = (
    "val_acc", "test_acc", "val_agent_acc", "test_agent_acc", "best_val_acc", "accuracy",
    "val_accuracy", "test_accuracy", "acc", "val_loss", "test_loss", "loss",
)
# Bookkeeping: true of the run, but not how good it is.
BOOKKEEPING = frozenset({
    "best_epoch", "epoch", "epoch_time_s", "lr", "samples_per_s", "step_loss", "cache_hit",
    "drift_score",
})
# Which way is better, for ranking by a metric: losses and errors fall, the rest rise.
LOWER_IS_BETTER = ("loss", "error", "_time_s", "mse", "mae", "perplexity")


def objective_of(run: RunInfo) -> str | None:
    """The metric the run's trainer reports as its objective, if the run logged it."""
    for key in TRAINER_OBJECTIVES.get(run.tags.get(TRAINER_TAG, ""), ()) + COMMON_OBJECTIVES:
        if key in run.metrics:
            return key
    return None


def goal_of(metric: str) -> str:
    """``min`` for losses, errors and times, ``max`` for the rest (accuracies, scores)."""
    return "min" if metric.lower().endswith(LOWER_IS_BETTER) else "max"


def key_metrics(runs: Sequence[RunInfo], first: str | None = None) -> list[str]:
    """Every metric the runs logged, most telling first (``first`` leads when given)."""
    counts = Counter(key for run in runs for key in run.metrics)
    objective = [key for run in runs
                 for key in TRAINER_OBJECTIVES.get(run.tags.get(TRAINER_TAG, ""), ())
                 if key in counts]
    common = [key for key in COMMON_OBJECTIVES if key in counts]
    rest = [key for key, _ in counts.most_common() if key not in BOOKKEEPING]
    ordered = [first] if first else []
    for key in [*objective, *common, *rest, *sorted(counts)]:
        if key not in ordered:
            ordered.append(key)
    return ordered
