"""`agentnn model best`: the best finished run by one metric."""

from __future__ import annotations

import json


def test_best_picks_the_lowest_finished_run_and_max_the_highest(cli, populated):
    low = cli("model", "best", "routing", "--metric", "val_loss", "--output", "json",
              "--tracking-uri", populated["uri"])
    assert low.exit_code == 0, low.output
    (run,) = json.loads(low.stdout)
    assert run["run_id"] == populated["lr_0.01"] and run["metrics"]["val_loss"] == 0.2
    high = cli("model", "best", "routing", "--metric", "val_loss", "--max", "--output", "json",
               "--tracking-uri", populated["uri"])
    assert json.loads(high.stdout)[0]["run_id"] == populated["lr_0.1"]


def test_a_metric_no_run_logged_is_one_line_and_exit_1(cli, populated):
    result = cli("model", "best", "routing", "--metric", "f1", "--tracking-uri", populated["uri"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: finished run with metric 'f1' not found")


def test_best_without_a_metric_is_a_usage_error(cli, populated):
    assert cli("model", "best", "routing", "--tracking-uri", populated["uri"]).exit_code == 2
