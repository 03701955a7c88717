"""load_interactions / write_interactions: round trips, and bad lines named by file, line, field."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentnn.data import InteractionRecord, load_interactions, write_interactions
from agentnn.data.records import MAX_PROBLEMS_LISTED, records_sha256, validate_record
from agentnn.errors import DataError

GOOD = {
    "task_description": "review the supplier contract", "chosen_agent": "legal_agent",
    "success": True, "response_time": 12.5, "confidence": 0.8, "user_feedback": 5,
}


def write_lines(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(
        (row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows
    ), encoding="utf-8")
    return path


def test_written_records_load_back_equal(tmp_path: Path) -> None:
    records = [
        InteractionRecord(**GOOD),
        InteractionRecord(**{**GOOD, "success": False, "user_feedback": 2.5}, domain="legal",
                          task_type="review", timestamp="2025-03-01T10:00:00+00:00"),
    ]
    path = write_interactions(records, tmp_path / "sub" / "logs.jsonl")
    assert load_interactions(path) == records
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2


def test_an_invalid_record_is_not_written(tmp_path: Path) -> None:
    bad = InteractionRecord(**{**GOOD, "confidence": 2.0})
    with pytest.raises(DataError, match="record 1 .*'confidence'"):
        write_interactions([InteractionRecord(**GOOD), bad], tmp_path / "logs.jsonl")
    assert not (tmp_path / "logs.jsonl").exists()


def test_unknown_fields_survive_a_round_trip(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "logs.jsonl", [{**GOOD, "session": "abc", "cost": 0.01}])
    (record,) = load_interactions(path)
    assert record.extra == {"session": "abc", "cost": 0.01}
    again = write_interactions([record], tmp_path / "again.jsonl")
    assert json.loads(again.read_text(encoding="utf-8")) == {**GOOD, "session": "abc", "cost": 0.01}


def test_blank_lines_are_not_records(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "logs.jsonl", [GOOD, "", "   ", GOOD])
    assert len(load_interactions(path)) == 2


def test_bad_line_is_named_with_file_line_and_field(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "logs.jsonl", [GOOD, GOOD, {**GOOD, "confidence": 1.5}, GOOD])
    with pytest.raises(DataError) as caught:
        load_interactions(path)
    message = str(caught.value)
    assert str(path) in message
    assert "line 3" in message and "'confidence'" in message and "1.5" in message
    assert "\n" not in message
    assert caught.value.problems == [(3, "confidence", caught.value.problems[0][2])]


def test_any_bad_line_fails_the_whole_load_and_all_are_counted(tmp_path: Path) -> None:
    rows: list[object] = [GOOD] * 3 + ["{not json"] + [{**GOOD, "success": "yes"}] * 8
    path = write_lines(tmp_path / "logs.jsonl", rows)
    with pytest.raises(DataError) as caught:
        load_interactions(path)
    message = str(caught.value)
    assert "9 bad records" in message
    assert "line 4: not valid JSON" in message
    assert "line 5, field 'success'" in message
    assert f"and {9 - MAX_PROBLEMS_LISTED} more" in message
    assert len(caught.value.problems) == MAX_PROBLEMS_LISTED


def test_missing_field_and_non_object_lines_are_reported(tmp_path: Path) -> None:
    incomplete = {key: value for key, value in GOOD.items() if key != "chosen_agent"}
    path = write_lines(tmp_path / "logs.jsonl", [incomplete, "[1, 2]"])
    with pytest.raises(DataError, match=r"line 1, field 'chosen_agent': missing.*line 2: "
                                        r"expected a JSON object"):
        load_interactions(path)


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_interactions(tmp_path / "absent.jsonl")


@pytest.mark.parametrize(("field", "value"), [
    ("response_time", -1), ("response_time", "fast"), ("confidence", -0.1),
    ("user_feedback", 0), ("user_feedback", 6), ("success", 1), ("task_description", "  "),
    ("chosen_agent", None), ("timestamp", "yesterday"), ("domain", 3),
])
def test_out_of_range_or_mistyped_values_are_rejected(field: str, value: object) -> None:
    problems = validate_record({**GOOD, field: value})
    assert [name for name, _ in problems] == [field]


def test_content_hash_changes_with_any_value() -> None:
    one = [InteractionRecord(**GOOD)]
    assert records_sha256(one) == records_sha256([InteractionRecord(**GOOD)])
    changed = [InteractionRecord(**{**GOOD, "confidence": 0.81})]
    assert records_sha256(one) != records_sha256(changed)


finite = {"allow_nan": False, "allow_infinity": False}
valid_records = st.builds(
    InteractionRecord,
    task_description=st.text(min_size=1).filter(str.strip),
    chosen_agent=st.text(min_size=1).filter(str.strip),
    success=st.booleans(),
    response_time=st.floats(min_value=0, max_value=1e6, **finite),
    confidence=st.floats(min_value=0, max_value=1, **finite),
    user_feedback=st.one_of(st.integers(1, 5), st.floats(min_value=1, max_value=5, **finite)),
    domain=st.none() | st.text(min_size=1).filter(str.strip),
    task_type=st.none() | st.sampled_from(["analysis", "review"]),
)


@settings(max_examples=60, deadline=None)
@given(records=st.lists(valid_records, max_size=5))
def test_any_valid_records_round_trip(tmp_path_factory: pytest.TempPathFactory,
                                      records: list[InteractionRecord]) -> None:
    path = tmp_path_factory.mktemp("round") / "logs.jsonl"
    assert load_interactions(write_interactions(records, path)) == records


@settings(max_examples=60, deadline=None)
@given(value=st.one_of(
    st.floats(max_value=-1e-9, **finite), st.floats(min_value=1.000001),
    st.just(math.nan), st.text(), st.booleans(), st.none(),
))
def test_confidence_outside_zero_to_one_is_always_rejected(value: object) -> None:
    assert ("confidence" in [name for name, _ in validate_record({**GOOD, "confidence": value})])
