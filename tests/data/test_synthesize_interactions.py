"""synthesize_interactions: deterministic, realistic, and learnable only from the text."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from agentnn.data import build_interaction_dataset, synthesize_interactions, validate_record
from agentnn.errors import DataError


def test_same_seed_same_log_and_other_seed_other_log() -> None:
    assert synthesize_interactions(50, 4, seed=3) == synthesize_interactions(50, 4, seed=3)
    assert synthesize_interactions(50, 4, seed=3) != synthesize_interactions(50, 4, seed=4)


def test_every_record_is_valid_and_names_its_domain_and_type() -> None:
    records = synthesize_interactions(300, 5, seed=1)
    assert all(validate_record(r.to_dict()) == [] for r in records)
    assert len({r.chosen_agent for r in records}) == 5
    assert len({r.domain for r in records}) == 5
    assert all(r.domain and r.task_type and r.timestamp for r in records)
    assert 0.2 < np.mean([r.success for r in records]) < 0.8


def test_agents_do_best_in_their_home_domain() -> None:
    records = synthesize_interactions(3000, 4, seed=0)
    for agent in ("finance_agent", "tech_agent"):
        home = agent.removesuffix("_agent")
        at_home = [r.success for r in records if r.chosen_agent == agent and r.domain == home]
        away = [r.success for r in records if r.chosen_agent == agent and r.domain != home]
        assert np.mean(at_home) > np.mean(away) + 0.3


def test_best_agent_is_learnable_from_text_and_a_guess_is_not() -> None:
    data = build_interaction_dataset(synthesize_interactions(1000, 4, seed=0), seed=0)
    model = LogisticRegression(max_iter=2000).fit(data.train.features, data.train.labels)
    accuracy = model.score(data.test.features, data.test.labels)
    majority = np.bincount(data.test.labels).max() / len(data.test)
    assert accuracy >= 0.8
    assert majority < 0.5


@pytest.mark.parametrize(("n_records", "n_agents"), [(0, 4), (10, 1), (10, 9), (10, True)])
def test_impossible_sizes_are_refused(n_records: int, n_agents: int) -> None:
    with pytest.raises(DataError):
        synthesize_interactions(n_records, n_agents)
