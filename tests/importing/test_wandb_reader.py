"""WandbReader against real W&B offline runs written by the real ``wandb`` package (no network)."""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

wandb = pytest.importorskip("wandb")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from agentnn.errors import DataError  # noqa: E402
from agentnn.mlflow_integration.importing.source import SourceRun  # noqa: E402
from agentnn.mlflow_integration.importing.wandb import WandbReader  # noqa: E402

CONFIG = {"lr": 0.001, "epochs": 3, "name": "mlp", "use_bn": True, "dropout": None,
          "optimizer": {"name": "adam", "betas": [0.9, 0.999]}}
EXPECTED_PARAMS = {"lr": "0.001", "epochs": "3", "name": "mlp", "use_bn": "true",
                   "dropout": "null", "optimizer.name": "adam",
                   "optimizer.betas": "[0.9, 0.999]"}


@pytest.fixture(scope="module", autouse=True)
def offline_wandb() -> Iterator[None]:
    """W&B offline, silent, without console capture, and writing nothing outside temp folders."""
    home = tempfile.mkdtemp(prefix="wandb-home-")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")
        patch.setenv("WANDB_SILENT", "true")
        patch.setenv("WANDB_CONSOLE", "off")
        for name in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
            patch.setenv(name, home)
        yield


def log_offline_run(
    folder: Path,
    history: list[dict[str, Any]],
    *,
    project: str = "routing",
    config: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    notes: str | None = None,
    summary: dict[str, Any] | None = None,
    exit_code: int = 0,
) -> Path:
    """One offline run in ``folder/wandb``; each history row is logged at its ``step`` key."""
    run = wandb.init(
        mode="offline", project=project, config=config, tags=tags, notes=notes, dir=folder,
        settings=wandb.Settings(console="off", x_disable_stats=True, x_disable_meta=True,
                                x_save_requirements=False),
    )
    for row in history:
        values = {key: value for key, value in row.items() if key != "step"}
        wandb.log(values, step=row["step"])
    for key, value in (summary or {}).items():
        run.summary[key] = value
    wandb.finish(exit_code=exit_code)
    wandb.teardown()  # finish returns before wandb-core has written the whole file; this waits
    (run_folder,) = (folder / "wandb").glob("offline-run-*")
    return run_folder


def read_one(path: Path) -> SourceRun:
    (run,) = WandbReader().runs(path, None)
    return run


def same_value(read: float, logged: float) -> bool:
    return (math.isnan(read) and math.isnan(logged)) or read == logged


# --- every point, param and tag ------------------------------------------------------------

metric_names = st.from_regex(r"[a-z][a-z0-9_/]{0,11}", fullmatch=True)
metric_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**53), max_value=2**53),
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[str], list[dict[str, Any]]]:
    """Several keys over strictly rising steps, each row with an explicit ``_timestamp``."""
    keys = draw(st.lists(metric_names, min_size=1, max_size=4, unique=True))
    steps = sorted(draw(st.sets(st.integers(0, 2**40), min_size=1, max_size=25)))
    timestamps_ms = sorted(draw(st.lists(st.integers(1_000_000_000_000, 2_000_000_000_000),
                                         min_size=len(steps), max_size=len(steps))))
    rows = []
    for step, timestamp_ms in zip(steps, timestamps_ms):
        row = {key: draw(metric_values) for key in keys}
        rows.append({**row, "step": step, "_timestamp": timestamp_ms / 1000})
    return keys, rows


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logged=histories())
def test_reads_every_point_param_and_tag_logged(
    logged: tuple[list[str], list[dict[str, Any]]],
) -> None:
    keys, rows = logged
    with tempfile.TemporaryDirectory() as folder:
        run_folder = log_offline_run(Path(folder), rows, config=CONFIG, tags=["baseline", "v 2"],
                                     notes="first try")
        run = read_one(Path(folder))

    run_id = run_folder.name.rsplit("-", 1)[1]
    assert (run.kind, run.source_id, run.experiment) == ("wandb", f"routing/{run_id}", "routing")
    assert run.status == "FINISHED"
    assert run.params == EXPECTED_PARAMS
    assert run.tags["wandb.tags"] == json.dumps(["baseline", "v 2"])
    assert run.tags["mlflow.note.content"] == "first try"
    assert run.tags["wandb.run_id"] == run_id
    assert run.skipped == []
    assert sorted(run.metrics) == sorted(keys)
    for key in keys:
        series = run.metrics[key]
        assert series.steps == [row["step"] for row in rows]
        assert series.timestamps_ms == [round(row["_timestamp"] * 1000) for row in rows]
        assert len(series.values) == len(rows)
        for read, row in zip(series.values, rows):
            assert same_value(read, float(row[key])), (key, row)


def test_experiment_given_by_the_caller_wins_over_the_project(tmp_path: Path) -> None:
    log_offline_run(tmp_path, [{"step": 0, "loss": 1.0}])
    (run,) = WandbReader().runs(tmp_path / "wandb", "mine")
    assert run.experiment == "mine"
    assert run.run_name  # the run id when the offline run has no display name


# --- summary, non-numeric values and status ------------------------------------------------


def test_summary_keys_never_in_history_become_final_points_or_tags(tmp_path: Path) -> None:
    rows = [{"step": 3, "loss": 0.5, "note": "warm"}, {"step": 7, "loss": 0.25, "note": "hot"}]
    log_offline_run(tmp_path, rows, summary={"best_acc": 0.9, "verdict": "good",
                                             "loss": 0.1, "eval": {"f1": 0.75}})
    run = read_one(tmp_path)

    assert run.metrics["loss"].values == [0.5, 0.25]  # the summary's loss is not added twice
    for key, value in (("best_acc", 0.9), ("eval.f1", 0.75)):
        assert run.metrics[key].steps == [7]
        assert run.metrics[key].values == [value]
        assert run.metrics[key].timestamps_ms == [run.end_time_ms]
    assert run.tags["wandb.summary.verdict"] == "good"
    assert "note" not in run.metrics and "wandb.summary.note" not in run.tags
    assert run.skipped == ["2 non-numeric history values skipped (keys: note)"]


@pytest.mark.parametrize(("exit_code", "status"), [(0, "FINISHED"), (3, "FAILED")])
def test_exit_code_sets_the_status(tmp_path: Path, exit_code: int, status: str) -> None:
    log_offline_run(tmp_path, [{"step": 0, "loss": 1.0}], exit_code=exit_code)
    run = read_one(tmp_path)
    assert run.status == status
    assert run.start_time_ms is not None and run.end_time_ms is not None
    assert run.start_time_ms <= run.end_time_ms


# --- damaged and foreign folders -----------------------------------------------------------


def test_truncated_file_yields_its_readable_part_and_one_skipped_line(tmp_path: Path) -> None:
    rows = [{"step": step, "loss": 1.0 / (step + 1), "acc": step * 0.1} for step in range(10)]
    rows[6]["cut_marker_here"] = 1.0  # first written at step 6: cutting inside it cuts a record
    run_folder = log_offline_run(tmp_path, rows)
    (run_file,) = run_folder.glob("run-*.wandb")
    data = run_file.read_bytes()
    run_file.write_bytes(data[: data.index(b"cut_marker_here") + 5])

    run = read_one(tmp_path)

    assert run.status == "KILLED"  # the exit record was cut off
    assert sorted(run.metrics) == ["acc", "loss"]
    assert run.metrics["loss"].steps == list(range(6))
    assert run.metrics["loss"].values == [row["loss"] for row in rows[:6]]
    assert run.metrics["acc"].values == [row["acc"] for row in rows[:6]]
    assert len(run.skipped) == 1
    assert str(run_file) in run.skipped[0]


def test_a_folder_that_is_not_a_wandb_run_is_not_detected(tmp_path: Path) -> None:
    (tmp_path / "tb").mkdir()
    (tmp_path / "tb" / "events.out.tfevents.1700000000.host").write_bytes(b"\0" * 64)
    (tmp_path / "empty" / "wandb").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("not a run")
    reader = WandbReader()
    for path in (tmp_path, tmp_path / "tb", tmp_path / "empty", tmp_path / "notes.txt",
                 tmp_path / "missing"):
        assert not reader.detect(path), path


def test_a_run_is_detected_from_its_file_folder_wandb_folder_or_project(tmp_path: Path) -> None:
    run_folder = log_offline_run(tmp_path, [{"step": 0, "loss": 1.0}])
    (run_file,) = run_folder.glob("run-*.wandb")
    reader = WandbReader()
    for path in (run_file, run_folder, tmp_path / "wandb", tmp_path):
        assert reader.detect(path), path
        assert [run.source_id for run in reader.runs(path, None)] == [
            f"routing/{run_file.stem.removeprefix('run-')}"]  # latest-run is not read twice


def test_an_unreadable_run_file_is_named_after_the_readable_runs(tmp_path: Path) -> None:
    log_offline_run(tmp_path, [{"step": 0, "loss": 1.0}])
    bad = tmp_path / "wandb" / "offline-run-20200101_000000-broken" / "run-broken.wandb"
    bad.parent.mkdir()
    bad.write_bytes(b"this is no transaction log")

    read: list[SourceRun] = []
    with pytest.raises(DataError, match="run-broken.wandb"):
        read.extend(WandbReader().runs(tmp_path, None))
    assert [run.metrics["loss"].values for run in read] == [[1.0]]


def test_missing_wandb_package_raises_one_line_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_offline_run(tmp_path, [{"step": 0, "loss": 1.0}])
    for name in [name for name in sys.modules if name == "wandb" or name.startswith("wandb.")]:
        monkeypatch.setitem(sys.modules, name, None)  # what an install without wandb sees

    reader = WandbReader()
    assert reader.detect(tmp_path)  # finding runs needs no wandb
    with pytest.raises(DataError) as raised:
        list(reader.runs(tmp_path, None))
    message = str(raised.value)
    assert "pip install 'agentnn[import]'" in message and os.linesep not in message


# --- into a real store ---------------------------------------------------------------------


def test_import_stores_the_offline_run_once(workdir: Path, store_uri: str) -> None:
    from mlflow import MlflowClient

    from agentnn.sdk.nn_models import ModelManager

    rows = [{"step": step, "loss": 1.0 / (step + 1), "acc": math.nan if step == 2 else step / 4,
             "_timestamp": 1_700_000_000 + step} for step in range(5)]
    run_folder = log_offline_run(workdir / "source", rows, config=CONFIG, tags=["baseline"],
                                 notes="first try", summary={"best_acc": 0.75}, exit_code=1)
    run_id = run_folder.name.rsplit("-", 1)[1]

    (first,) = ModelManager(store_uri).import_runs([workdir / "source"])
    (again,) = ModelManager(store_uri).import_runs([run_folder])

    assert first.error is None and first.created and first.points == 11
    assert (again.run_id, again.created, again.changed) == (first.run_id, False, False)
    client = MlflowClient(tracking_uri=store_uri)
    stored = client.get_run(first.run_id)
    assert stored.info.status == "FAILED"
    assert client.get_experiment(stored.info.experiment_id).name == "routing"
    assert stored.data.params == EXPECTED_PARAMS
    assert stored.data.tags["agentnn.imported_from"] == f"wandb:routing/{run_id}"
    assert stored.data.tags["wandb.tags"] == '["baseline"]'
    assert stored.data.tags["mlflow.note.content"] == "first try"
    for key in ("loss", "acc"):
        history = sorted(client.get_metric_history(first.run_id, key), key=lambda m: m.step)
        assert [(m.step, m.timestamp) for m in history] == [
            (row["step"], row["_timestamp"] * 1000) for row in rows]
        assert all(same_value(m.value, row[key]) for m, row in zip(history, rows))
    (best,) = client.get_metric_history(first.run_id, "best_acc")
    assert (best.step, best.value) == (4, 0.75)
    assert len(client.search_runs([stored.info.experiment_id])) == 1
