"""build_route_inputs: task texts to model inputs, using only a routing model's metadata."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agentnn.data import (
    HashingFeaturizer,
    build_interaction_dataset,
    build_route_inputs,
    routing_metadata,
    synthesize_interactions,
)
from agentnn.errors import DataError, ModelError

TASKS = ["audit the tax return for the board", "fix the server outage asap"]


def test_inputs_match_what_the_model_was_trained_on() -> None:
    data = build_interaction_dataset(synthesize_interactions(60, 3, seed=0),
                                     HashingFeaturizer(dim=48, ngram=3))
    metadata = json.loads(json.dumps(data.route_metadata()))  # as stored with the model
    assert metadata["route_input"] == "task" and metadata["agents"] == list(data.agents)
    inputs = build_route_inputs(TASKS, metadata)
    assert inputs.shape == (2, 48) and inputs.dtype == np.float32
    assert np.array_equal(inputs, data.featurizer.transform(TASKS))


@pytest.mark.parametrize("broken", [
    {"route_input": "task+metrics"},
    {"featurizer": None},
    {"input_dim": 7},
    {"featurizer": {"kind": "tfidf"}},
])
def test_metadata_that_cannot_describe_task_inputs_is_refused(broken: dict) -> None:
    metadata = {**routing_metadata(["a", "b"], HashingFeaturizer(dim=16)), **broken}
    if broken.get("featurizer", 0) is None:
        del metadata["featurizer"]
    with pytest.raises(ModelError, match="metadata"):
        build_route_inputs(TASKS, metadata)


def test_a_single_string_is_refused() -> None:
    metadata = routing_metadata(["a", "b"], HashingFeaturizer(dim=16))
    with pytest.raises(DataError, match="list of task descriptions"):
        build_route_inputs("fix the server", metadata)
