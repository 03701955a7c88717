"""trackio projects logged by trackio itself, imported into a real SQLite store."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import mlflow
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from import_helpers import fresh_store, point_set, stored_value, write_trackio

from agentnn.mlflow_integration.importing.source import IMPORTED_FROM_TAG
from agentnn.sdk.nn_models import ModelManager

EXAMPLES = 4  # each example starts a Python process that imports trackio

keys = st.text(alphabet="abcdefgh_-", min_size=1, max_size=12).filter(lambda k: k[0] != "_")
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                   st.integers(-10**6, 10**6))
logs = st.lists(st.tuples(st.dictionaries(keys, values, min_size=1, max_size=3),
                          st.integers(0, 10**9)), min_size=1, max_size=25)


def _ms(stamp: str) -> int:
    moment = datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return round(moment.timestamp() * 1000)


def _expected(read_back: list[dict]) -> dict[str, set]:
    """Per metric, the points trackio itself reads back: (step, time, value)."""
    expected: dict[str, set] = {}
    for row in read_back:
        for key, value in row.items():
            if key in ("step", "timestamp"):
                continue
            expected.setdefault(key, set()).add(
                (row["step"], _ms(row["timestamp"]), stored_value(float(value))))
    return expected


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(run_logs=logs)
def test_every_logged_number_arrives(run_logs, template_store: Path, workdir: Path) -> None:
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        trackio_dir = Path(tmp) / "trackio"
        read_back = write_trackio(trackio_dir, [{
            "project": "routing", "name": "run-a", "config": {"lr": 0.01},
            "logs": [[metrics, step] for metrics, step in run_logs],
        }])
        uri = fresh_store(Path(tmp), template_store)

        [result] = ModelManager(uri).import_runs([trackio_dir])

        assert result.error is None, result.error
        client = mlflow.MlflowClient(uri)
        expected = _expected(read_back["run-a"])
        run = client.get_run(result.run_id)
        assert set(run.data.metrics) == set(expected)
        for key, points in expected.items():
            assert point_set(client.get_metric_history(result.run_id, key)) == points
        assert result.points == sum(len(metrics) for metrics, _ in run_logs)


def test_runs_configs_and_a_second_import(template_store: Path, workdir: Path) -> None:
    trackio_dir = workdir / "trackio"
    config = {"lr": 0.1, "layers": [64, 32], "optimizer": {"name": "adam", "beta": 0.9},
              "note": "x" * 7000}
    write_trackio(trackio_dir, [
        {"project": "routing", "name": "wide", "config": config,
         "logs": [[{"loss": 1.0, "acc": 0.5}, 0], [{"loss": 0.5}, 1]]},
        {"project": "routing", "name": "narrow", "config": {},
         "logs": [[{"loss": 2.0}, None], [{"loss": 1.5}, None]]},
    ])
    uri = fresh_store(workdir, template_store)

    first = ModelManager(uri).import_runs([trackio_dir / "routing.db"])
    second = ModelManager(uri).import_runs([trackio_dir])

    assert [r.run_name for r in first] == ["wide", "narrow"]
    client = mlflow.MlflowClient(uri)
    wide = client.get_run(first[0].run_id)
    assert wide.data.params["lr"] == "0.1"
    assert json.loads(wide.data.params["layers"]) == [64, 32]
    assert wide.data.params["optimizer.name"] == "adam"
    assert len(wide.data.params["note"]) == 6000
    assert any("'note' truncated" in line for line in first[0].skipped)
    assert wide.data.tags[IMPORTED_FROM_TAG].startswith("trackio:routing/")
    assert wide.info.status == "FINISHED"
    assert client.get_experiment(wide.info.experiment_id).name == "routing"
    narrow = client.get_metric_history(first[1].run_id, "loss")
    assert sorted((p.step, p.value) for p in narrow) == [(0, 2.0), (1, 1.5)]
    assert [(r.run_id, r.created, r.points) for r in second] == [
        (r.run_id, False, 0) for r in first]
