"""HashingFeaturizer: fixed-size rows that are the same in every process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from agentnn.data import HashingFeaturizer
from agentnn.errors import TrainerConfigError

TEXTS = ["Review the supplier contract by Friday", "fix the memory leak in the python service",
         "", "!!!"]


def test_rows_are_fixed_size_float32_and_unit_length() -> None:
    matrix = HashingFeaturizer(dim=64, ngram=2).transform(TEXTS)
    assert matrix.shape == (4, 64) and matrix.dtype == np.float32
    assert np.allclose(np.linalg.norm(matrix[:2], axis=1), 1.0)
    assert not matrix[2:].any()  # no words, no features


def test_case_and_punctuation_do_not_change_a_row() -> None:
    featurizer = HashingFeaturizer()
    a, b = featurizer.transform(["Fix the LEAK!", "fix the leak"])
    assert np.array_equal(a, b)


def test_different_texts_give_different_rows() -> None:
    a, b = HashingFeaturizer().transform(TEXTS[:2])
    assert float(a @ b) < 0.5


def test_rows_are_identical_in_another_process() -> None:
    """Python's hash() is salted per process; the featurizer must not depend on it."""
    script = (
        "import json, sys; from agentnn.data import HashingFeaturizer; "
        "print(json.dumps(HashingFeaturizer(dim=128, ngram=3).transform(json.loads(sys.argv[1]))"
        ".tolist()))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    child = subprocess.run([sys.executable, "-c", script, json.dumps(TEXTS)], env=env,
                           capture_output=True, text=True, check=True, timeout=120)
    theirs = np.array(json.loads(child.stdout), dtype=np.float32)
    assert np.array_equal(theirs, HashingFeaturizer(dim=128, ngram=3).transform(TEXTS))


def test_config_round_trips_to_an_equal_featurizer() -> None:
    featurizer = HashingFeaturizer(dim=100, ngram=1)
    rebuilt = HashingFeaturizer.from_config(json.loads(json.dumps(featurizer.config())))
    assert rebuilt == featurizer
    assert np.array_equal(rebuilt.transform(TEXTS), featurizer.transform(TEXTS))


@pytest.mark.parametrize("config", [
    {"kind": "tfidf", "dim": 64}, {"kind": "hashing", "dim": 64, "version": 99},
    {"kind": "hashing", "dim": 3}, {"kind": "hashing", "ngram": 0}, {"dims": 64},
])
def test_unusable_configs_are_refused(config: dict) -> None:
    with pytest.raises(TrainerConfigError):
        HashingFeaturizer.from_config(config)


def test_a_single_string_is_refused_rather_than_split_into_characters() -> None:
    with pytest.raises(TrainerConfigError, match="list of texts"):
        HashingFeaturizer().transform("fix the leak")  # type: ignore[arg-type]
