"""Interaction logs: the record format, featurisation, synthetic data and loaders.

Importing this package is cheap: the names below load their module (and numpy, scikit-learn
or torch) on first use, so the command line can import it at start-up.

Records and files (``agentnn.data.records``)::

    InteractionRecord(task_description, chosen_agent, success, response_time, confidence,
                      user_feedback, domain=None, task_type=None, timestamp=None, extra={})
    load_interactions(path) -> list[InteractionRecord]   # DataError: file, line, field
    write_interactions(records, path) -> Path            # JSON Lines, atomic
    records_sha256(records) -> str                       # content hash of the canonical form

Featurisation (``agentnn.data.featurize``)::

    featurizer = HashingFeaturizer(dim=256, ngram=2)
    featurizer.transform(texts) -> float32 (n, dim)      # same rows in every process
    HashingFeaturizer.from_config(featurizer.config())   # {"kind", "dim", "ngram", "version"}

Synthetic logs (``agentnn.data.synthetic``)::

    synthesize_interactions(n_records, n_agents=4, seed=0) -> list[InteractionRecord]

Data sets for trainers (``agentnn.data.datasets``)::

    data = build_interaction_dataset(records, featurizer=None, seed=0, source="synthetic")
    data = load_dataset("logs.jsonl" | "digits", seed=0)
    data = load_interaction_dataset("logs.jsonl", seed=0, featurizer=None)
    data = load_digits_dataset(seed=0)                   # 1,797 8x8 digits scaled to 0..1
    data.train / data.val / data.test                    # .features float32, .labels int64,
                                                         # .tensors() -> dict of torch tensors
    data.class_names, data.n_classes, data.feature_dim
    data.params                                          # log with every run: data.source,
                                                         # data.records, data.sha256,
                                                         # data.split.*, featurizer.*
    # interaction data sets only:
    data.agents, data.featurizer, data.agent_history, data.metric_names
    data.train.agent_index, .success, .response_time, .confidence, .user_feedback,
    data.train.agent_metrics                              # chosen agent's training history
    data.route_metadata()                                 # store it with a routing model

Imports: :mod:`agentnn.errors`, numpy, scikit-learn and torch (inside the functions that need
them); nothing else of agentnn, so the trainers, the managers and the command can all use it.

``labels`` of an interaction data set are the best agent for each task: the agent with the
highest smoothed success rate on training records of the task's (domain, task type), see
``BestAgentTable``. Outcome-derived values come from the training split only.

Routing models and run time::

    metadata = routing_metadata(agents, featurizer)
    # {"agents": [...], "featurizer": {...}, "route_input": "task", "input_dim": dim}
    # "task": the model's input is the featurised task text, its output one logit per agent
    build_route_inputs(task_texts, metadata) -> float32 (n, input_dim)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "InteractionRecord": "records",
    "load_interactions": "records",
    "write_interactions": "records",
    "records_sha256": "records",
    "validate_record": "records",
    "HashingFeaturizer": "featurize",
    "synthesize_interactions": "synthetic",
    "AGENT_PROFILES": "synthetic",
    "Split": "datasets",
    "InteractionSplit": "datasets",
    "LabelledDataset": "datasets",
    "InteractionDataset": "datasets",
    "BestAgentTable": "datasets",
    "build_interaction_dataset": "datasets",
    "split_indices": "datasets",
    "agent_history": "datasets",
    "dataset_params": "datasets",
    "load_digits_dataset": "datasets",
    "load_dataset": "datasets",
    "load_interaction_dataset": "datasets",
    "routing_metadata": "datasets",
    "build_route_inputs": "datasets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Load a public name's module on first use (PEP 562)."""
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module_name}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
