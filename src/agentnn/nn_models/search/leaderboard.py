"""The search's leaderboard: trials ranked by validation loss, logged on the parent run.

Rows live in each trial's user attributes, so any process of the study (or a later command)
can rebuild the board; it is logged as ``leaderboard.json`` and ``leaderboard.csv``.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from agentnn.nn_models.search import study as search_study
from agentnn.nn_models.training.configs import (
    JSONDict,
)

if TYPE_CHECKING:
    import optuna

    from agentnn.mlflow_integration import TrackedRun


LEADERBOARD_FIELDS = ("rank", "trial", "state", "run_id", "val_loss", "val_acc", "depth",
                      "hidden_sizes", "final_hidden_sizes", "dropout", "activation",
                      "learning_rate", "n_params", "reshapes")
LeaderboardRow: TypeAlias = JSONDict
"""One trial on the leaderboard (keys of ``LEADERBOARD_FIELDS``): stored as JSON in the study's
trial attributes and in ``leaderboard.json``; rows of older trials may lack keys."""

# --- the leaderboard ---------------------------------------------------------------------------


def leaderboard_rows(trials: list[optuna.trial.FrozenTrial]) -> list[LeaderboardRow]:
    """Every finished trial of the study: complete ones ranked by val_loss (then size), then
    pruned and failed ones unranked, by trial number."""
    from optuna.trial import TrialState

    ranked: list[LeaderboardRow]
    others: list[LeaderboardRow]
    ranked, others = [], []
    for trial in trials:
        if trial.state in (TrialState.RUNNING, TrialState.WAITING):
            continue
        row = dict(trial.user_attrs.get(search_study.ROW_ATTR) or {
            "trial": trial.number, "run_id": trial.user_attrs.get(search_study.RUN_ID_ATTR)})
        row["state"] = search_study.trial_state_name(trial.state)
        (ranked if trial.state == TrialState.COMPLETE else others).append(row)
    ranked.sort(key=lambda row: (row["val_loss"], row["n_params"], row["trial"]))
    others.sort(key=lambda row: row["trial"])
    return ([{"rank": place, **row} for place, row in enumerate(ranked, start=1)]
            + [{"rank": None, **row} for row in others])


def leaderboard_csv(rows: list[LeaderboardRow]) -> str:
    """The leaderboard as CSV text (lists joined with ``x``: ``64x32``)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LEADERBOARD_FIELDS, lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "x".join(map(str, value)) if isinstance(value, list) else value
                         for key, value in row.items()})
    return buffer.getvalue()


def log_leaderboard(run: TrackedRun, rows: list[LeaderboardRow],
                     best_spec: JSONDict) -> None:
    with tempfile.TemporaryDirectory(prefix="agentnn-search-") as tmp:
        folder = Path(tmp)
        (folder / "leaderboard.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
        (folder / "leaderboard.csv").write_text(leaderboard_csv(rows), encoding="utf-8")
        (folder / "best_architecture.json").write_text(json.dumps(best_spec, indent=2),
                                                       encoding="utf-8")
        for name in ("leaderboard.json", "leaderboard.csv", "best_architecture.json"):
            run.log_artifact(str(folder / name))
