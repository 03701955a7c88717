"""build_interaction_dataset: seeded splits, labels and history from the training split only."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from agentnn.data import (
    HashingFeaturizer,
    InteractionDataset,
    agent_history,
    build_interaction_dataset,
    load_dataset,
    load_interaction_dataset,
    synthesize_interactions,
    write_interactions,
)
from agentnn.data.datasets import METRIC_NAMES, split_indices
from agentnn.errors import DataError

RECORDS = synthesize_interactions(400, 4, seed=2)


def test_splits_cover_every_record_once_and_depend_only_on_the_seed() -> None:
    train, val, test = split_indices(400, seed=5)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(400))
    assert (len(train), len(val), len(test)) == (280, 60, 60)
    again = split_indices(400, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
    assert not np.array_equal(train, split_indices(400, seed=6)[0])


def test_arrays_line_up_with_the_records() -> None:
    data = build_interaction_dataset(RECORDS, HashingFeaturizer(dim=64), seed=1)
    assert data.agents == ("finance_agent", "legal_agent", "marketing_agent", "tech_agent")
    assert data.feature_dim == 64 and data.n_classes == 4
    split = data.val
    n = len(split)
    assert split.features.shape == (n, 64) and split.features.dtype == np.float32
    assert split.agent_metrics.shape == (n, len(METRIC_NAMES))
    for array in (split.labels, split.agent_index):
        assert array.dtype == np.int64 and array.min() >= 0 and array.max() < 4
    record = RECORDS[split_indices(len(RECORDS), seed=1)[1][0]]
    expected = data.featurizer.transform([record.task_description])[0]
    assert np.array_equal(split.features[0], expected)
    assert split.success[0] == float(record.success)
    assert split.response_time[0] == pytest.approx(record.response_time)
    assert data.agents[split.agent_index[0]] == record.chosen_agent


def test_history_and_labels_ignore_validation_and_test_outcomes() -> None:
    """Flipping every held-out outcome must change neither the labels nor the history."""
    train_idx, _, _ = split_indices(len(RECORDS), seed=0)
    train_rows = set(train_idx.tolist())
    flipped = [
        record if i in train_rows else dataclasses.replace(
            record, success=not record.success, confidence=1.0 - record.confidence)
        for i, record in enumerate(RECORDS)
    ]
    original = build_interaction_dataset(RECORDS, seed=0)
    changed = build_interaction_dataset(flipped, seed=0)
    assert np.array_equal(original.agent_history, changed.agent_history)
    assert np.array_equal(original.test.labels, changed.test.labels)
    assert np.array_equal(original.test.agent_metrics, changed.test.agent_metrics)
    assert not np.array_equal(original.test.success, changed.test.success)


def test_params_name_size_hash_split_and_featurizer() -> None:
    data = build_interaction_dataset(RECORDS, HashingFeaturizer(dim=32, ngram=1), seed=3)
    params = data.params
    assert params["data.records"] == 400 and params["data.agents"] == 4
    assert len(params["data.sha256"]) == 64
    assert (params["data.split.train"], params["data.split.seed"]) == (280, 3)
    assert (params["featurizer.dim"], params["featurizer.ngram"]) == (32, 1)
    other = build_interaction_dataset(RECORDS[:-1], seed=3).params
    assert other["data.sha256"] != params["data.sha256"]


def test_tensors_are_torch_tensors_of_the_same_values() -> None:
    split = build_interaction_dataset(RECORDS, seed=0).train
    tensors = split.tensors()
    assert tensors["features"].dtype == torch.float32
    assert tensors["labels"].dtype == torch.int64
    assert np.array_equal(tensors["success"].numpy(), split.success)


def test_a_log_file_loads_as_a_dataset_with_its_path_as_source(tmp_path) -> None:
    path = write_interactions(RECORDS[:50], tmp_path / "logs.jsonl")
    data = load_dataset(path, seed=0)
    assert isinstance(data, InteractionDataset)
    assert data.params["data.source"] == str(path)
    same = load_interaction_dataset(path, seed=0)
    assert np.array_equal(same.train.features, data.train.features)
    assert len(data.train) + len(data.val) + len(data.test) == 50


def test_records_without_a_domain_are_labelled_with_their_chosen_agent() -> None:
    bare = [dataclasses.replace(r, domain=None, task_type=None) for r in RECORDS[:40]]
    data = build_interaction_dataset(bare, seed=0)
    assert np.array_equal(data.train.labels, data.train.agent_index)


@pytest.mark.parametrize("n_records", [0, 9])
def test_empty_or_tiny_logs_are_refused(n_records: int) -> None:
    with pytest.raises(DataError, match="need at least 10"):
        build_interaction_dataset(RECORDS[:n_records])


@pytest.mark.parametrize(("val", "test"), [(0.0, 0.1), (0.5, 0.5), (1.2, 0.1)])
def test_impossible_split_fractions_are_refused(val: float, test: float) -> None:
    with pytest.raises(DataError, match="fraction"):
        build_interaction_dataset(RECORDS, val_fraction=val, test_fraction=test)


def test_an_agent_missing_from_training_gets_the_overall_history() -> None:
    train = RECORDS[:100]
    history = agent_history(train, ("finance_agent", "rare_agent"))
    assert history[1, 0] == pytest.approx(np.mean([r.success for r in train]))
    finance = [r.success for r in train if r.chosen_agent == "finance_agent"]
    assert history[0, 0] == pytest.approx(np.mean(finance))
