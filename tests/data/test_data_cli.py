"""`agentnn data synth` and `agentnn data check`, driven in-process through the real app."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from agentnn.cli.main import app
from agentnn.data import load_interactions

runner = CliRunner()


def test_synth_writes_a_valid_log_of_the_asked_size(tmp_path: Path) -> None:
    out = tmp_path / "logs.jsonl"
    result = runner.invoke(app, ["data", "synth", "--records", "120", "--agents", "3",
                                 "--seed", "7", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 120 records" in result.output
    records = load_interactions(out)
    assert len(records) == 120 and len({r.chosen_agent for r in records}) == 3


def test_synth_with_the_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    for name in ("a.jsonl", "b.jsonl"):
        runner.invoke(app, ["data", "synth", "--records", "30", "--seed", "1",
                            str(tmp_path / name)])
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_synth_takes_the_old_dash_o_file_spelling_with_a_deprecation_warning(
        tmp_path: Path) -> None:
    out = tmp_path / "old.jsonl"
    result = runner.invoke(app, ["data", "synth", "--records", "10", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert len(load_interactions(out)) == 10
    assert "-o/--output is the output format" in result.stderr
    assert f"agentnn data synth {out}" in result.stderr


def test_synth_dash_o_json_prints_what_was_written(tmp_path: Path) -> None:
    out = tmp_path / "logs.jsonl"
    result = runner.invoke(app, ["data", "synth", "--records", "10", str(out), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"file": str(out), "records": 10, "agents": 4,
                                         "seed": 0}
    assert result.stderr == ""


def test_synth_without_a_file_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "synth", "--records", "10"])
    assert result.exit_code == 2
    assert "name the file to write" in result.stderr


def test_synth_refuses_too_many_agents(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "synth", "--agents", "9", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert not (tmp_path / "x").exists()


def test_check_prints_counts_of_a_good_log(tmp_path: Path) -> None:
    out = tmp_path / "logs.jsonl"
    runner.invoke(app, ["data", "synth", "--records", "80", "--agents", "4", str(out)])
    result = runner.invoke(app, ["data", "check", str(out), "--output", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    records = load_interactions(out)
    assert summary["records"] == 80 and summary["agents"] == 4
    assert summary["success_rate"] == round(sum(r.success for r in records) / 80, 4)
    assert sum(row["records"] for row in summary["per_agent"].values()) == 80
    table = runner.invoke(app, ["data", "check", str(out)])
    assert table.exit_code == 0 and "success rate" in table.output and "80" in table.output


def test_check_reports_a_bad_line_in_one_line_and_fails(tmp_path: Path) -> None:
    out = tmp_path / "logs.jsonl"
    runner.invoke(app, ["data", "synth", "--records", "5", str(out)])
    with out.open("a", encoding="utf-8") as handle:
        handle.write('{"task_description": "x", "chosen_agent": "a", "success": true, '
                     '"response_time": -2, "confidence": 0.5, "user_feedback": 3}\n')
    result = runner.invoke(app, ["data", "check", str(out)])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert str(out) in lines[0] and "line 6" in lines[0] and "'response_time'" in lines[0]


def test_check_of_an_empty_log_fails(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    result = runner.invoke(app, ["data", "check", str(empty)])
    assert result.exit_code == 1
    assert "holds no records" in result.stderr
