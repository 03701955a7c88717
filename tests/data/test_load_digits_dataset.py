"""load_digits_dataset: scikit-learn's digits, scaled and split, learnable to >= 0.95."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from agentnn.data import load_dataset, load_digits_dataset


def test_digits_are_scaled_split_and_described() -> None:
    data = load_digits_dataset(seed=0)
    assert data.feature_dim == 64 and data.n_classes == 10
    assert len(data.train) + len(data.val) + len(data.test) == 1797
    assert data.train.features.dtype == np.float32
    assert 0.0 <= data.train.features.min() and data.train.features.max() == 1.0
    assert data.params["data.source"] == "sklearn.digits"
    assert data.params["data.records"] == 1797 and len(data.params["data.sha256"]) == 64


def test_same_seed_same_split() -> None:
    a, b = load_digits_dataset(seed=4), load_dataset("digits", seed=4)
    assert np.array_equal(a.test.labels, b.test.labels)
    assert a.params == b.params
    assert not np.array_equal(a.test.labels, load_digits_dataset(seed=5).test.labels)


def test_a_linear_model_reaches_095_on_the_test_split() -> None:
    data = load_digits_dataset(seed=0)
    model = LogisticRegression(max_iter=2000).fit(data.train.features, data.train.labels)
    assert model.score(data.test.features, data.test.labels) >= 0.95
