"""`launch`: a DDP job under torchrun with two CPU processes yields exactly one tracked run."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import mlflow
import numpy as np
import pytest

from agentnn.errors import TrainerConfigError, TrainingJobError
from agentnn.nn_models import training_infrastructure as ti

EPOCHS = 2


def _rank_sums(directory: Path) -> dict[int, dict[str, dict[str, float]]]:
    """Per epoch, the train/val sums of every rank added up, as the test computes them."""
    totals: dict[int, dict[str, dict[str, float]]] = {}
    files = sorted(directory.glob("rank-*.jsonl"))
    assert [path.name for path in files] == ["rank-0.jsonl", "rank-1.jsonl"]
    for path in files:
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            epoch = totals.setdefault(entry["epoch"], {"train": {}, "val": {}})
            for split in ("train", "val"):
                for key, value in entry[split].items():
                    epoch[split][key] = epoch[split].get(key, 0.0) + value
    return totals


def test_two_process_job_logs_one_run_whose_metrics_are_the_all_reduced_rank_values(
    workdir: Path, store_uri: str
) -> None:
    config = {"epochs": EPOCHS, "grad_accum_steps": 2, "batch_size": 32,
              "train_accuracy": True, "rank_metrics_dir": str(workdir / "ranks")}

    result = ti.launch(2, config, dataset="digits", tracking_uri=store_uri)

    client = mlflow.MlflowClient(store_uri)
    experiment = client.get_experiment_by_name("distributed_training")
    runs = client.search_runs([experiment.experiment_id])
    assert [run.info.run_id for run in runs] == [result.run_id]
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["world_size"] == "2"
    assert run.data.params["backend"] == "gloo"
    assert run.data.params["grad_accum_steps"] == "2"
    assert run.data.params["data.source"] == "sklearn.digits"

    expected = _rank_sums(workdir / "ranks")
    assert sorted(expected) == list(range(1, EPOCHS + 1))
    for name, split, numerator in (("train_loss", "train", "loss"), ("train_acc", "train",
                                   "correct"), ("val_loss", "val", "loss"),
                                   ("val_acc", "val", "correct")):
        history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, name)}
        assert sorted(history) == list(range(1, EPOCHS + 1)), name
        for epoch, sums in expected.items():
            mean = sums[split][numerator] / sums[split]["count"]
            assert history[epoch] == pytest.approx(mean, rel=1e-9), (name, epoch)
    # the validation shards of both ranks together cover the whole validation split
    assert expected[1]["val"]["count"] == int(run.data.params["data.split.val"])

    mlflow.set_tracking_uri(store_uri)
    model = mlflow.pyfunc.load_model(result.model_uri)
    scores = np.asarray(model.predict(np.zeros((3, 64), dtype=np.float32)))
    assert scores.shape == (3, 10)


def test_launch_refuses_a_bad_config_before_starting_any_process(
    workdir: Path, store_uri: str
) -> None:
    with pytest.raises(TrainerConfigError, match="grad_accum_steps"):
        ti.launch(2, {"grad_accum_steps": 0}, dataset="digits", tracking_uri=store_uri)
    assert mlflow.MlflowClient(store_uri).search_experiments(
        filter_string="name = 'distributed_training'"
    ) == []
    assert not (workdir / "checkpoints").exists()


def test_a_failing_rank_fails_the_launch_with_its_error_line(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTNN_OFFLINE", "fail")  # no fallback to ./mlruns: the rank fails
    with socket.socket() as sock:  # a port nobody listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        dead_server = f"http://127.0.0.1:{sock.getsockname()[1]}"

    with pytest.raises(TrainingJobError, match="does not answer") as caught:
        ti.launch(2, {"epochs": 1}, dataset="digits", tracking_uri=dead_server)
    assert caught.value.exit_code not in (0, None)
    assert not (workdir / "checkpoints").exists()
