"""`online_learning`: one run per learner session, step = update count, learning, drift, resume."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mlflow
import numpy as np
import pytest
from trainer_helpers import Interrupted

from agentnn.data import BestAgentTable, synthesize_interactions, write_interactions
from agentnn.errors import DataError, TrainerConfigError
from agentnn.mlflow_integration import ExperimentTracker
from agentnn.nn_models import online_learning as ol

EXPERIMENT = "online_learning"
BATCH = 32


@pytest.fixture(scope="module")
def records():
    return synthesize_interactions(640, n_agents=4, seed=1)


@pytest.fixture
def log_file(workdir: Path, records) -> Path:
    return write_interactions(records, workdir / "logs.jsonl")


def _history(client: mlflow.MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in client.get_metric_history(run_id, key)]


def _crash_at_update_seven(
    config: dict[str, int], log_file: Path, tracker: ExperimentTracker, workdir: Path
) -> tuple[mlflow.MlflowClient, mlflow.entities.Run, Path]:
    """Stream the log until update 7 crashes: the store's client, the crashed run, its
    checkpoint folder."""

    def crash_at_update_seven(update: int, metrics: dict[str, float]) -> None:
        if update == 7:
            raise Interrupted

    with pytest.raises(Interrupted):
        ol.train(config, log_file, tracker=tracker, on_epoch=crash_at_update_seven)
    client = mlflow.MlflowClient(tracker.tracking_uri)
    (crashed,) = client.search_runs([tracker.experiment_id])
    return client, crashed, workdir / "checkpoints" / EXPERIMENT / crashed.info.run_id


def test_streaming_a_log_yields_one_run_with_a_point_per_window_of_updates(
    store_uri: str, log_file: Path, records
):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    result = ol.train({"batch_size": BATCH, "log_every_updates": 10}, log_file, tracker=tracker)

    client = mlflow.MlflowClient(store_uri)
    runs = client.search_runs([tracker.experiment_id])
    assert [run.info.run_id for run in runs] == [result.run_id]
    updates = len(records) // BATCH
    assert [step for step, _ in _history(client, result.run_id, "val_loss")] == list(
        range(10, updates + 1, 10)
    )
    params = runs[0].data.params
    assert params["agents"] == "['finance_agent', 'legal_agent', 'marketing_agent', 'tech_agent']"
    assert params["replay_capacity"] == "2000"
    assert params["data.records"] == str(len(records))
    assert params["featurizer.dim"] == "256"
    assert result.epochs_run == updates

    mlflow.set_tracking_uri(store_uri)
    model = mlflow.pyfunc.load_model(result.model_uri)
    assert np.asarray(model.predict(np.zeros((2, 256), dtype=np.float32))).shape == (2, 4)


def test_the_learner_learns_to_route_from_the_stream(store_uri: str):
    stream = synthesize_interactions(1200, n_agents=4, seed=1)
    agents = sorted({record.chosen_agent for record in stream})
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    with ol.OnlineLearner({"agents": agents}, tracker=tracker) as learner:
        for start in range(0, len(stream), BATCH):
            learner.update(stream[start:start + BATCH])
        held_out = synthesize_interactions(400, n_agents=4, seed=9)
        routed = learner.route([record.task_description for record in held_out])

    best = BestAgentTable(stream + held_out, agents)
    accuracy = np.mean([agents.index(a) == best.best_for(r) for a, r in zip(routed, held_out)])
    assert accuracy >= 0.5  # chance is 0.25 with four agents
    client = mlflow.MlflowClient(store_uri)
    val_acc = [value for _, value in _history(client, learner.result.run_id, "val_acc")]
    assert len(val_acc) == 2  # 38 updates: points at 25 and at the session's end
    assert val_acc[-1] > val_acc[0]
    assert "agentnn.drift_detected" not in client.get_run(learner.result.run_id).data.tags


def test_drift_fires_a_metric_and_tags_when_outcomes_flip(store_uri: str, workdir: Path):
    before = synthesize_interactions(960, n_agents=4, seed=1)
    after = [dataclasses.replace(r, success=not r.success)
             for r in synthesize_interactions(320, n_agents=4, seed=2)]
    path = write_interactions(before + after, workdir / "drifting.jsonl")
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)

    result = ol.train({"batch_size": BATCH, "log_every_updates": 1}, path, tracker=tracker)

    client = mlflow.MlflowClient(store_uri)
    fired = [step for step, value in _history(client, result.run_id, "drift") if value == 1.0]
    flip_update = len(before) // BATCH
    assert fired and all(step > flip_update for step in fired)
    tags = client.get_run(result.run_id).data.tags
    assert tags["agentnn.drift_detected"] == "true"
    assert int(tags["agentnn.last_drift_update"]) == fired[-1]
    lr = dict(_history(client, result.run_id, "lr"))
    assert lr[fired[0]] > lr[fired[0] - 1]  # the learning rate returns to its base value


def test_same_seed_and_stream_give_the_same_metrics(store_uri: str, log_file: Path):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    first = ol.train({"seed": 4}, log_file, tracker=tracker)
    second = ol.train({"seed": 4}, log_file, tracker=tracker)
    client = mlflow.MlflowClient(store_uri)
    for key in ("train_loss", "val_loss", "val_acc", "drift_score"):
        assert _history(client, first.run_id, key) == _history(client, second.run_id, key)


def test_resume_continues_the_same_run_after_the_last_snapshot(
    store_uri: str, log_file: Path, workdir: Path, records
):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    config = {"batch_size": BATCH, "snapshot_every": 5, "log_every_updates": 1}
    client, crashed, folder = _crash_at_update_seven(config, log_file, tracker, workdir)
    assert [path.name for path in folder.iterdir()] == ["epoch-0005.pt"]

    result = ol.train(config, log_file, tracker=tracker, resume_from=folder)

    assert result.run_id == crashed.info.run_id
    assert len(client.search_runs([tracker.experiment_id])) == 1
    steps = sorted(step for step, _ in _history(client, result.run_id, "val_loss"))
    assert steps == list(range(1, len(records) // BATCH + 1))  # each update logged once
    records_seen = dict(_history(client, result.run_id, "records_seen"))
    assert records_seen[len(records) // BATCH] == len(records)  # no record learned twice
    assert client.get_run(result.run_id).info.status == "FINISHED"


def test_a_logged_point_sums_up_the_updates_of_its_window(store_uri: str, log_file: Path):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    each = ol.train({"seed": 5, "log_every_updates": 1}, log_file, tracker=tracker)
    windows = ol.train({"seed": 5, "log_every_updates": 10}, log_file, tracker=tracker)

    client = mlflow.MlflowClient(store_uri)
    per_update = {key: dict(_history(client, each.run_id, key))
                  for key in ("val_loss", "val_acc", "train_loss", "lr", "records_seen")}
    summed = {key: dict(_history(client, windows.run_id, key)) for key in per_update}
    for end in (10, 20):
        window = range(end - 9, end + 1)  # equal batches: the record mean is the update mean
        for key in ("val_loss", "val_acc", "train_loss"):
            expected = np.mean([per_update[key][step] for step in window])
            assert summed[key][end] == pytest.approx(expected, rel=1e-9), (key, end)
        for key in ("lr", "records_seen"):  # what the learner is now: the window's last update
            assert summed[key][end] == per_update[key][end]
    assert windows.best_metrics["val_acc"] == summed["val_acc"][20]


def test_a_resumed_session_with_windows_logs_each_step_once(
    store_uri: str, log_file: Path, workdir: Path, records
):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    config = {"batch_size": BATCH, "snapshot_every": 5, "log_every_updates": 10}
    client, crashed, folder = _crash_at_update_seven(config, log_file, tracker, workdir)
    # the updates before the crash are not lost: their window is logged as the session fails
    assert [step for step, _ in _history(client, crashed.info.run_id, "val_loss")] == [7]

    result = ol.train(config, log_file, tracker=tracker, resume_from=folder)

    steps = [step for step, _ in _history(client, result.run_id, "val_loss")]
    assert steps == [7, 10, 20]


def test_the_learner_is_a_context_manager_taking_plain_dicts(store_uri: str, records):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    agents = sorted({record.chosen_agent for record in records})
    with ol.OnlineLearner({"agents": agents}, tracker=tracker, register_as="online-router") as lrn:
        metrics = lrn.update([record.to_dict() for record in records[:BATCH]])
        assert metrics["records_seen"] == BATCH
        assert lrn.logged == {}  # the first point comes after 25 updates (or at the end)
        with pytest.raises(DataError, match="agent 'sales_agent' is not one of"):
            lrn.update([{**records[0].to_dict(), "chosen_agent": "sales_agent"}])
        assert set(lrn.route(["Review the merger contract"])) <= set(agents)
    assert lrn.result.registered_version == "1"
    assert mlflow.MlflowClient(store_uri).get_run(lrn.result.run_id).info.status == "FINISHED"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"agents": ["only_agent"]}, "at least two agents"),
        ({"replay_ratio": -1.0}, "replay_ratio"),
        ({"lr_decay": 2.0}, "lr_decay"),
        ({"batchsize": 8}, "unknown OnlineConfig key"),
    ],
)
def test_bad_config_raises_before_any_run_exists(store_uri, log_file, config, message):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    with pytest.raises(TrainerConfigError, match=message):
        ol.train(config, log_file, tracker=tracker)
    assert mlflow.MlflowClient(store_uri).search_runs([tracker.experiment_id]) == []


def test_a_bad_or_empty_log_raises_before_any_run_exists(store_uri: str, workdir: Path):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    bad = workdir / "bad.jsonl"
    bad.write_text('{"task_description": "x"}\n')
    with pytest.raises(DataError, match="line 1"):
        ol.train({}, bad, tracker=tracker)
    empty = workdir / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(TrainerConfigError, match="empty"):
        ol.train({}, empty, tracker=tracker)
    assert mlflow.MlflowClient(store_uri).search_runs([tracker.experiment_id]) == []


# --- the replay reservoir ----------------------------------------------------------------------


def _offer(buffer: ol.ReplayBuffer, first: int, count: int) -> None:
    """Offer records ``first .. first+count-1``; each record's feature 0 is its stream number."""
    import torch

    numbers = torch.arange(first, first + count, dtype=torch.float32)
    features = torch.zeros(count, 4)
    features[:, 0] = numbers
    buffer.add(features, torch.zeros(count, dtype=torch.long), torch.ones(count))


def test_the_reservoir_keeps_a_uniform_sample_of_the_whole_stream():
    kept_early = kept_late = 0
    for seed in range(40):
        buffer = ol.ReplayBuffer(capacity=100, n_features=4, seed=seed)
        for first in range(0, 2000, 32):
            _offer(buffer, first, min(32, 2000 - first))
        stored = buffer.features[:buffer.size, 0]
        assert buffer.size == 100 and buffer.seen == 2000
        assert len(set(stored.tolist())) == 100  # no record stored twice
        kept_early += int((stored < 1000).sum())
        kept_late += int((stored >= 1000).sum())
    # each half of the stream holds half of the reservoir (4,000 stored records in all)
    assert abs(kept_early - kept_late) < 400


def test_the_reservoir_continues_identically_after_a_state_round_trip():
    original = ol.ReplayBuffer(capacity=50, n_features=4, seed=3)
    _offer(original, 0, 120)
    restored = ol.ReplayBuffer(capacity=50, n_features=4, seed=99)
    restored.load_state_dict(original.state_dict())
    for buffer in (original, restored):
        _offer(buffer, 120, 64)
    assert np.array_equal(original.features, restored.features)
    assert [t.tolist() for t in original.sample(10)] == [t.tolist() for t in restored.sample(10)]


def test_a_reservoir_state_saved_with_a_torch_generator_still_loads():
    import torch

    old_state = {"features": torch.ones(3, 4), "agents": torch.tensor([0, 1, 2]),
                 "success": torch.tensor([1.0, 0.0, 1.0]), "seen": 3,
                 "generator": torch.Generator().manual_seed(0).get_state()}
    buffer = ol.ReplayBuffer(capacity=10, n_features=4, seed=0)
    buffer.load_state_dict(old_state)
    assert buffer.size == 3 and buffer.seen == 3
    features, agents, _ = buffer.sample(5)
    assert features.shape == (5, 4) and set(agents.tolist()) <= {0, 1, 2}
