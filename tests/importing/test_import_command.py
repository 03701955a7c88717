"""`agentnn model import`: the command, and one import through a real `mlflow server`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import mlflow
import pytest
from import_helpers import as_float32, fresh_store, point_set, write_tensorboard

from agentnn.sdk.nn_models import ModelManager

BASE_TIME = 1_700_000_000.0


def test_import_prints_a_table_and_json(cli, template_store: Path, workdir: Path) -> None:
    write_tensorboard(workdir / "logs" / "a", {"loss": [(i, 0.1 * i, BASE_TIME + i)
                                                        for i in range(20)]})
    uri = fresh_store(workdir, template_store)

    first = cli("model", "import", str(workdir / "logs"), "--tracking-uri", uri)
    second = cli("model", "import", str(workdir / "logs"), "--tracking-uri", uri, "-o", "json")

    assert first.exit_code == 0, first.output
    assert "tensorboard:a" in first.stdout and "20 points" in first.stdout
    assert second.exit_code == 0, second.output
    [record] = json.loads(second.stdout)
    assert (record["source"], record["created"], record["points"]) == ("tensorboard:a", False, 0)


def test_a_bad_source_is_one_line_and_exit_1(cli, template_store: Path, workdir: Path) -> None:
    write_tensorboard(workdir / "logs" / "a", {"loss": [(0, 1.0, BASE_TIME)]})
    (workdir / "empty").mkdir()
    uri = fresh_store(workdir, template_store)

    result = cli("model", "import", str(workdir / "empty"), str(workdir / "logs"),
                 "--experiment", "mixed", "--tracking-uri", uri)

    assert result.exit_code == 1
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {workdir / 'empty'}: not a TensorBoard log folder, a W&B offline run or a "
        "trackio project"]
    assert "Traceback" not in result.output
    client = mlflow.MlflowClient(uri)
    assert len(client.search_runs([client.get_experiment_by_name("mixed").experiment_id])) == 1


@pytest.mark.server
def test_import_into_a_server_goes_through_log_batch(mlflow_server: str, workdir: Path) -> None:
    """An HTTP store has no native path: the same points arrive through log_batch."""
    points = [(i, float(i) / 7, BASE_TIME + i / 10) for i in range(2500)]
    write_tensorboard(workdir / "logs" / "served", {"loss": points, "nan": [(0, float("nan"),
                                                                             BASE_TIME)]},
                      hparams={"lr": 0.5})
    experiment = f"imported-{uuid.uuid4().hex[:8]}"

    [first] = ModelManager(mlflow_server).import_runs([workdir / "logs"], experiment=experiment)
    [second] = ModelManager(mlflow_server).import_runs([workdir / "logs"], experiment=experiment)

    client = mlflow.MlflowClient(mlflow_server)
    history = client.get_metric_history(first.run_id, "loss")
    assert point_set(history) == {(s, round(t * 1000), as_float32(v)) for s, v, t in points}
    assert first.points == 2502  # loss, nan, and add_hparams' own hparam/score
    assert client.get_run(first.run_id).data.params == {"lr": "0.5"}
    assert (second.run_id, second.created, second.points) == (first.run_id, False, 0)
