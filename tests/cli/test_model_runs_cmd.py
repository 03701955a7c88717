"""`agentnn model runs`: filters, order, limits, formats and one-line errors."""

from __future__ import annotations

import csv
import io
import json


def runs_json(cli, populated, *args):
    result = cli("model", "runs", *args, "--tracking-uri", populated["uri"], "--output", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_fields_of_a_run_are_checked_one_by_one(cli, populated):
    (run,) = runs_json(cli, populated, "routing", "--filter", "params.lr = '0.001'")
    assert run["run_id"] == populated["lr_0.001"]
    assert run["run_name"] == "lr-0.001"
    assert run["experiment_id"] == populated["routing_experiment"]
    assert run["status"] == "FINISHED"
    assert run["lifecycle_stage"] == "active"
    assert run["start_time"].endswith("+00:00") and run["end_time"].endswith("+00:00")
    assert isinstance(run["duration_s"], float) and run["duration_s"] >= 0
    assert run["parent_run_id"] is None
    assert run["metrics"] == {"val_loss": 0.3, "acc": 0.85}
    assert run["params"] == {"lr": "0.001", "optimizer": "adamw", "seed": "0"}
    assert run["tags"]["stage"] == "dev"


def test_nan_metrics_are_json_strings_and_sort_after_numbers(cli, populated):
    runs = runs_json(cli, populated, "routing", "--order-by", "metrics.val_loss ASC")
    names = [run["run_name"] for run in runs]
    assert names[0] == "failed-run" and names[-2:] == ["nan-run", "parent"]
    assert runs[-2]["metrics"]["val_loss"] == "nan"


def test_limit_caps_the_list_and_zero_lists_everything(cli, populated):
    assert len(runs_json(cli, populated, "routing", "--limit", "2")) == 2
    assert len(runs_json(cli, populated, "--limit", "0")) == 10
    assert len(runs_json(cli, populated, "routing", "--deleted", "--limit", "0")) == 9


def test_csv_has_a_column_per_metric_and_param(cli, populated):
    result = cli("model", "runs", "routing", "--tracking-uri", populated["uri"], "--output", "csv",
                 "--filter", "attributes.status = 'FAILED'")
    (row,) = list(csv.DictReader(io.StringIO(result.stdout)))
    assert row["run_id"] == populated["failed"]
    assert row["status"] == "FAILED"
    assert row["metrics.val_loss"] == "0.01"
    assert row["params.lr"] == "0.0001"


def test_the_table_shows_short_run_ids_and_the_ordered_metric(cli, populated):
    result = cli("model", "runs", "routing", "--tracking-uri", populated["uri"],
                 "--order-by", "metrics.acc DESC")
    assert result.exit_code == 0
    assert populated["lr_0.01"][:8] in result.stdout
    assert populated["lr_0.01"] not in result.stdout  # 8 characters, as the commands take them
    header = next(line for line in result.stdout.splitlines() if "run id" in line)
    names = [cell.strip() for cell in header.split("┃")[1:-1]]
    metrics = names[names.index("status") + 1:]
    assert [name for name in metrics if name not in ("started", "duration")][0] == "acc"


def test_unknown_experiment_and_bad_filter_are_one_line_errors(cli, populated):
    unknown = cli("model", "runs", "nope", "--tracking-uri", populated["uri"])
    assert unknown.exit_code == 1
    assert unknown.stderr.strip() == (
        "error: experiment 'nope' not found; list them with: agentnn model experiments"
    )
    bad = cli("model", "runs", "routing", "--filter", "metrics.a >>> 1",
              "--tracking-uri", populated["uri"])
    assert bad.exit_code == 2  # what was typed: a usage error
    assert bad.stderr.startswith("error: bad filter 'metrics.a >>> 1'")
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.output


def test_a_negative_limit_is_a_usage_error(cli, populated):
    assert cli("model", "runs", "--limit", "-1", "--tracking-uri", populated["uri"]).exit_code == 2


def test_a_narrow_terminal_shows_whole_short_run_ids(cli, populated):
    result = cli("model", "runs", "routing", "--tracking-uri", populated["uri"], columns=80)
    assert result.exit_code == 0
    assert f"│ {populated['lr_0.01'][:8]} │" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
