"""TensorBoard logs written by torch's SummaryWriter, imported into a real SQLite store."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from import_helpers import as_float32, fresh_store, point_set, stored_value, write_tensorboard

from agentnn.mlflow_integration.importing.source import IMPORTED_FROM_TAG
from agentnn.mlflow_integration.importing.writer import IMPORT_DONE, IMPORT_TAG
from agentnn.sdk.nn_models import ModelManager

EXAMPLES = 8  # each example writes a log folder and imports it; two shared cores
BASE_TIME = 1_700_000_000.0  # wall times written explicitly, so the test knows them

names = st.text(alphabet="abcdefghij_/-.0123456789 :", min_size=1, max_size=30).filter(
    lambda name: name.strip("/") == name and "//" not in name and ".." not in name
    and name not in (".",) and not name.endswith("/.") and "/./" not in name
    and not name.startswith("./"))
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                   st.sampled_from([float("nan"), float("inf"), float("-inf"), 0.0]))
series = st.lists(st.tuples(st.integers(0, 2**40), values,
                            st.integers(0, 10**6).map(lambda ms: BASE_TIME + ms / 1000)),
                  min_size=1, max_size=60)


def _import(uri: str, *paths: Path, experiment: str | None = None):
    return ModelManager(uri).import_runs(list(paths), experiment=experiment)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scalars=st.dictionaries(names, series, min_size=1, max_size=4))
def test_every_point_arrives_as_written(scalars, template_store: Path, workdir: Path) -> None:
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        folder = Path(tmp) / "logs" / "run-1"
        write_tensorboard(folder, scalars)
        uri = fresh_store(Path(tmp), template_store)

        [result] = _import(uri, folder.parent)

        assert result.error is None and result.created
        client = mlflow.MlflowClient(uri)
        run = client.get_run(result.run_id)
        assert set(run.data.metrics) == set(scalars)
        written = 0
        for tag, points in scalars.items():
            expected = {(step, round(walltime * 1000), stored_value(as_float32(value)))
                        for step, value, walltime in points}
            assert point_set(client.get_metric_history(result.run_id, tag)) == expected
            written += len(points)
        assert result.points == written
        assert run.data.tags[IMPORTED_FROM_TAG] == "tensorboard:run-1"
        assert run.data.tags[IMPORT_TAG] == IMPORT_DONE
        assert run.info.run_name == "run-1"
        assert client.get_experiment(run.info.experiment_id).name == "logs"


def test_hparams_become_params_and_text_becomes_tags(template_store: Path, workdir: Path) -> None:
    folder = workdir / "logs" / "tuned"
    write_tensorboard(folder, {"loss": [(0, 0.5, BASE_TIME), (1, 0.25, BASE_TIME + 1)]},
                      hparams={"lr": 0.001, "optimizer": "adam", "batch_size": 32},
                      texts={"notes": "first try, wider layers"})
    uri = fresh_store(workdir, template_store)

    [result] = _import(uri, workdir / "logs")

    run = mlflow.MlflowClient(uri).get_run(result.run_id)
    assert run.data.params == {"lr": "0.001", "optimizer": "adam", "batch_size": "32"}
    assert run.data.tags["notes"] == "first try, wider layers"
    assert run.info.status == "FINISHED"
    assert run.info.start_time == round(BASE_TIME * 1000)


def test_a_second_import_changes_nothing(template_store: Path, workdir: Path) -> None:
    logs = workdir / "logs"
    write_tensorboard(logs / "a", {"loss": [(i, 1 / (i + 1), BASE_TIME + i) for i in range(50)]},
                      hparams={"lr": 0.1})
    write_tensorboard(logs / "b" / "nested", {"acc": [(0, 0.5, BASE_TIME)]})
    uri = fresh_store(workdir, template_store)

    first = _import(uri, logs)
    second = _import(uri, logs)

    assert sorted(r.source for r in first) == ["tensorboard:a", "tensorboard:b/nested"]
    assert all(r.created for r in first)
    assert [(r.run_id, r.created, r.points, r.params, r.tags) for r in second] == [
        (r.run_id, False, 0, 0, 0) for r in first]
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("logs")
    assert len(client.search_runs([experiment.experiment_id])) == 2
    assert len(client.get_metric_history(first[0].run_id, "loss")) == 50


def test_an_import_cut_off_midway_is_finished_by_the_next(template_store: Path,
                                                         workdir: Path) -> None:
    """A run without the done tag (the import stopped) gets only what it lacks."""
    logs = workdir / "logs"
    write_tensorboard(logs / "a", {"loss": [(i, float(i), BASE_TIME + i) for i in range(30)]})
    uri = fresh_store(workdir, template_store)
    [first] = _import(uri, logs)
    client = mlflow.MlflowClient(uri)
    client.delete_tag(first.run_id, IMPORT_TAG)  # as if the import had stopped before its end

    [again] = _import(uri, logs)

    assert (again.run_id, again.created, again.points) == (first.run_id, False, 0)
    assert client.get_run(first.run_id).data.tags[IMPORT_TAG] == IMPORT_DONE
    assert len(client.get_metric_history(first.run_id, "loss")) == 30


def test_a_file_cut_off_mid_record_imports_its_readable_part(template_store: Path,
                                                            workdir: Path) -> None:
    folder = workdir / "logs" / "cut"
    write_tensorboard(folder, {"loss": [(i, float(i), BASE_TIME + i) for i in range(100)]})
    [event_file] = folder.glob("events.out.tfevents.*")
    data = event_file.read_bytes()
    event_file.write_bytes(data[: len(data) // 2 + 3])  # inside a record
    uri = fresh_store(workdir, template_store)

    [result] = _import(uri, folder)

    assert result.error is None
    history = mlflow.MlflowClient(uri).get_metric_history(result.run_id, "loss")
    steps = sorted(p.step for p in history)
    assert 0 < len(steps) < 100 and steps == list(range(len(steps)))
    assert len(result.skipped) == 1 and "unreadable from byte" in result.skipped[0]


def test_a_folder_that_is_no_source_gives_one_line(template_store: Path, workdir: Path) -> None:
    (workdir / "notes").mkdir()
    (workdir / "notes" / "readme.txt").write_text("no logs here")
    uri = fresh_store(workdir, template_store)

    [result] = _import(uri, workdir / "notes", workdir / "missing")[:1]

    assert result.run_id is None
    assert result.error is not None and "\n" not in result.error
    assert "not a TensorBoard log folder" in result.error


def test_names_mlflow_refuses_are_cleaned_and_said(template_store: Path, workdir: Path) -> None:
    folder = workdir / "logs" / "odd"
    write_tensorboard(folder, {"loss(train)": [(0, 1.0, BASE_TIME)], "ok": [(0, 2.0, BASE_TIME)]},
                      hparams={"api_token": "abc"})
    uri = fresh_store(workdir, template_store)

    [result] = _import(uri, folder, experiment="renamed")

    run = mlflow.MlflowClient(uri).get_run(result.run_id)
    assert set(run.data.metrics) == {"loss_train_", "ok", "hparam/score"}
    assert run.data.params == {"api_token": "***"}
    assert any("'loss(train)' stored as 'loss_train_'" in line for line in result.skipped)
    assert any("api_token" in line for line in result.skipped)
    assert mlflow.MlflowClient(uri).get_experiment(run.info.experiment_id).name == "renamed"
