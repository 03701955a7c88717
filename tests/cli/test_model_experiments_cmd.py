"""`agentnn model experiments`: the experiments table, as table, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json


def test_json_lists_each_experiment_with_its_documented_fields(cli, populated):
    result = cli("model", "experiments", "--tracking-uri", populated["uri"], "--output", "json")
    assert result.exit_code == 0, result.output
    by_name = {item["name"]: item for item in json.loads(result.stdout)}
    assert set(by_name) == {"Default", "routing", "Übung ✓ 路由"}
    routing = by_name["routing"]
    assert routing["experiment_id"] == populated["routing_experiment"]
    assert routing["run_count"] == 8
    assert routing["lifecycle_stage"] == "active"
    assert routing["last_run"].endswith("+00:00")
    assert by_name["Default"]["last_run"] is None


def test_csv_has_a_header_and_one_row_per_experiment(cli, populated):
    result = cli("model", "experiments", "--tracking-uri", populated["uri"], "--output", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {row["name"]: row["runs"] for row in rows}["Übung ✓ 路由"] == "2"


def test_the_table_names_every_experiment(cli, populated):
    result = cli("model", "experiments", "--tracking-uri", populated["uri"])
    assert result.exit_code == 0
    assert "routing" in result.stdout and "Übung ✓ 路由" in result.stdout


def test_an_unknown_output_format_is_a_usage_error(cli, populated):
    result = cli("model", "experiments", "--tracking-uri", populated["uri"], "--output", "xml")
    assert result.exit_code == 2


def test_an_unreachable_store_is_one_line_and_exit_1(cli):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = cli("model", "experiments", "--tracking-uri", f"http://127.0.0.1:{port}")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: tracking URI") and "does not answer" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
