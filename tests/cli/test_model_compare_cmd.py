"""`agentnn model compare`: runs side by side, differences marked."""

from __future__ import annotations

import csv
import io
import json


def test_json_lines_up_values_and_lists_what_differs(cli, populated):
    ids = [populated["lr_0.001"], populated["lr_0.01"]]
    result = cli("model", "compare", *ids, "--output", "json", "--tracking-uri", populated["uri"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["run_ids"] == ids
    assert data["params"]["lr"] == ["0.001", "0.01"]
    assert data["metrics"]["val_loss"] == [0.3, 0.2]
    assert "lr" in data["differing_params"] and "optimizer" not in data["differing_params"]


def test_csv_marks_differing_rows(cli, populated):
    ids = [populated["lr_0.001"], populated["lr_0.01"]]
    result = cli("model", "compare", *ids, "--output", "csv", "--tracking-uri", populated["uri"])
    rows = {row["key"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    assert rows["params.lr"]["differs"] == "yes"
    assert rows["params.optimizer"]["differs"] == ""
    assert rows["params.lr"][ids[0]] == "0.001"


def test_one_run_is_a_usage_error_and_an_unknown_one_a_user_error(cli, populated):
    assert cli("model", "compare", populated["lr_0.01"],
               "--tracking-uri", populated["uri"]).exit_code == 2
    unknown = cli("model", "compare", populated["lr_0.01"], "nope",
                  "--tracking-uri", populated["uri"])
    assert unknown.exit_code == 1 and unknown.stderr.strip() == "error: run 'nope' not found"
