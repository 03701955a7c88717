"""Arrays the trainers learn from: interaction logs and scikit-learn's digits, split by seed.

Both kinds of data set share one shape, so a classifier trainer can take either: ``train``,
``val`` and ``test`` splits with ``features`` (float32, ``(n, feature_dim)``) and ``labels``
(int64 class index), plus ``class_names`` and ``params`` (what every run logs about its data).

For interaction logs the label is the *best agent for the task* (see :func:`routing_labels`),
and each split also carries what the chosen agent did: its index, success, response time,
confidence, the user's feedback, and that agent's historical metrics. Everything derived from
outcomes (best agents, historical metrics) is computed from the training split only, so the
validation and test figures are not inflated by leakage.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agentnn.data.featurize import HashingFeaturizer
from agentnn.data.records import InteractionRecord, load_interactions, records_sha256
from agentnn.errors import DataError, ModelError, TrainerConfigError

# --- splits and sizes ----------------------------------------------------------------------
DEFAULT_VAL_FRACTION = 0.15
DEFAULT_TEST_FRACTION = 0.15
MIN_RECORDS = 10  # fewer leaves no meaningful validation or test split
DIGITS_SOURCE = "sklearn.digits"
DIGITS_PIXEL_MAX = 16.0  # digits pixels are 0..16; features are scaled to 0..1
SYNTHETIC_SOURCE = "synthetic"

# --- routing label and agent history -------------------------------------------------------
LABEL_RULE = "best_agent_by_domain_task_type"
SMOOTHING_WEIGHT = 3.0  # pseudo-records at the parent rate, so a lucky 2/2 does not beat 30/40
METRIC_NAMES = ("success_rate", "mean_confidence", "mean_feedback", "mean_log_response_time")
RESPONSE_TIME_SCALE = math.log1p(600.0)  # log seconds over this: about 0..1 up to ten minutes
ROUTE_INPUT_TASK = "task"  # a routing model whose input is the featurised task text alone


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a labelled data set."""

    features: np.ndarray
    """float32 ``(n, feature_dim)`` model inputs."""
    labels: np.ndarray
    """int64 ``(n,)`` class index to predict."""

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def tensors(self) -> dict[str, Any]:
        """Every array of the split as a torch tensor (float32, or int64 for indices)."""
        import torch

        return {
            spec.name: torch.from_numpy(np.ascontiguousarray(getattr(self, spec.name)))
            for spec in dataclasses.fields(self)
        }


@dataclass(frozen=True, eq=False)
class InteractionSplit(Split):
    """A split of an interaction log: task features, routing label and what happened."""

    agent_index: np.ndarray
    """int64 ``(n,)``: index of the agent that handled the task, into ``agents``."""
    success: np.ndarray
    """float32 ``(n,)``: 1.0 when the chosen agent solved the task."""
    response_time: np.ndarray
    """float32 ``(n,)``: seconds the chosen agent took."""
    confidence: np.ndarray
    """float32 ``(n,)``: the chosen agent's confidence, 0..1."""
    user_feedback: np.ndarray
    """float32 ``(n,)``: the user's rating, 1..5."""
    agent_metrics: np.ndarray
    """float32 ``(n, len(METRIC_NAMES))``: the chosen agent's training-split history."""


@dataclass(frozen=True, eq=False)
class LabelledDataset:
    """Train, validation and test splits of a classification data set."""

    train: Split
    val: Split
    test: Split
    class_names: tuple[str, ...]
    """Name of each class index."""
    params: dict[str, Any]
    """Size, content hash, split sizes, seed and featuriser settings: log them with every run."""

    @property
    def feature_dim(self) -> int:
        return int(self.train.features.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True, eq=False)
class InteractionDataset(LabelledDataset):
    """An interaction log as arrays; ``labels`` are best agents, ``class_names`` the agents."""

    train: InteractionSplit  # (the same fields, in the same order, as the base class's)
    val: InteractionSplit
    test: InteractionSplit
    featurizer: HashingFeaturizer
    """What turned task texts into ``features``; stored with routing models."""
    agent_history: np.ndarray
    """float32 ``(n_agents, len(METRIC_NAMES))``: each agent's training-split metrics."""
    metric_names: tuple[str, ...] = METRIC_NAMES

    @property
    def agents(self) -> tuple[str, ...]:
        return self.class_names

    @property
    def n_agents(self) -> int:
        return len(self.class_names)

    def route_metadata(self) -> dict[str, Any]:
        """The metadata a routing model stores so ``build_route_inputs`` can feed it later."""
        return routing_metadata(self.agents, self.featurizer)


def build_interaction_dataset(
    records: Sequence[InteractionRecord],
    featurizer: HashingFeaturizer | None = None,
    *,
    seed: int = 0,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    source: str = SYNTHETIC_SOURCE,
) -> InteractionDataset:
    """Featurise, split (deterministically by ``seed``) and label an interaction log.

    The agent vocabulary is every ``chosen_agent`` in the log, sorted by name. Raises
    :class:`DataError` for fewer than ``MIN_RECORDS`` records or impossible fractions.
    """
    records = list(records)
    featurizer = featurizer or HashingFeaturizer()
    train_idx, val_idx, test_idx = split_indices(len(records), seed, val_fraction, test_fraction)
    agents = tuple(sorted({record.chosen_agent for record in records}))
    train_records = [records[i] for i in train_idx]
    history = agent_history(train_records, agents)
    chooser = BestAgentTable(train_records, agents)

    def make_split(indices: np.ndarray) -> InteractionSplit:
        part = [records[i] for i in indices]
        agent_index = np.array([agents.index(r.chosen_agent) for r in part], dtype=np.int64)
        return InteractionSplit(
            features=featurizer.transform([r.task_description for r in part]),
            labels=np.array([chooser.best_for(r) for r in part], dtype=np.int64),
            agent_index=agent_index,
            success=np.array([r.success for r in part], dtype=np.float32),
            response_time=np.array([r.response_time for r in part], dtype=np.float32),
            confidence=np.array([r.confidence for r in part], dtype=np.float32),
            user_feedback=np.array([r.user_feedback for r in part], dtype=np.float32),
            agent_metrics=history[agent_index],
        )

    params = dataset_params(records, featurizer, source=source)
    params.update(_split_params(len(train_idx), len(val_idx), len(test_idx), seed))
    params["data.agents"] = len(agents)
    params["data.label"] = LABEL_RULE
    return InteractionDataset(
        train=make_split(train_idx), val=make_split(val_idx), test=make_split(test_idx),
        class_names=agents, params=params, featurizer=featurizer, agent_history=history,
    )


def split_indices(
    n_records: int, seed: int, val_fraction: float = DEFAULT_VAL_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION, minimum: int = MIN_RECORDS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test indices: a seeded permutation, each split non-empty."""
    if n_records == 0:
        raise DataError(f"the data set is empty; need at least {minimum} records")
    if n_records < minimum:
        raise DataError(
            f"the data set has {n_records} records; need at least {minimum} "
            "for non-empty train, validation and test splits"
        )
    for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < fraction < 1.0:
            raise DataError(f"{name} must be between 0 and 1 (exclusive), got {fraction!r}")
    if val_fraction + test_fraction >= 0.9:
        raise DataError(
            f"val_fraction + test_fraction must leave at least 10% for training, got "
            f"{val_fraction} + {test_fraction}"
        )
    n_val = max(1, round(n_records * val_fraction))
    n_test = max(1, round(n_records * test_fraction))
    order = np.random.default_rng(seed).permutation(n_records)
    n_train = n_records - n_val - n_test
    return order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]


class BestAgentTable:
    """The routing label: which agent is best for a task, learned from training records only.

    For a record with a domain and task type, the best agent is the one with the highest
    smoothed success rate on training records of the same (domain, task type); when that cell
    is unseen, of the same domain. Rates are shrunk hierarchically: an agent's domain rate gets
    ``SMOOTHING_WEIGHT`` pseudo-records at the global training success rate, and its cell rate
    the same number at its domain rate. So a cell goes to the domain's best agent unless the
    cell's own records clearly say otherwise, and an agent that was lucky once does not win it.
    Ties go to the agent first by name. A record without a domain (or with an unseen domain) is
    labelled with its chosen agent: all the log says about such a task is who handled it.

    The label is a function of the task's domain and type, which its text carries, so a model
    can learn it from the text alone.
    """

    def __init__(self, train_records: Sequence[InteractionRecord], agents: Sequence[str]) -> None:
        self.agents = tuple(agents)
        self.prior = (
            sum(r.success for r in train_records) / len(train_records) if train_records else 0.5
        )
        counts: dict[tuple[str, ...], np.ndarray] = defaultdict(
            lambda: np.zeros((len(self.agents), 2))  # per agent: tries, successes
        )
        for record in train_records:
            if record.domain is None:
                continue
            agent = self.agents.index(record.chosen_agent)
            keys: list[tuple[str, ...]] = [(record.domain,)]
            if record.task_type is not None:
                keys.append((record.domain, record.task_type))
            for key in keys:
                counts[key][agent] += (1.0, float(record.success))
        self._best: dict[tuple[str, ...], int] = {}
        for key, table in counts.items():
            if len(key) == 1:
                self._best[key] = int(np.argmax(self._rates(table, self.prior)))
            else:
                domain_rates = self._rates(counts[key[:1]], self.prior)
                self._best[key] = int(np.argmax(self._rates(table, domain_rates)))

    def best_for(self, record: InteractionRecord) -> int:
        """Index into ``agents`` of the best agent for ``record``'s task."""
        if record.domain is not None:
            if record.task_type is not None and (record.domain, record.task_type) in self._best:
                return self._best[(record.domain, record.task_type)]
            if (record.domain,) in self._best:
                return self._best[(record.domain,)]
        return self.agents.index(record.chosen_agent)

    @staticmethod
    def _rates(table: np.ndarray, prior: float | np.ndarray) -> np.ndarray:
        """Success rates shrunk towards ``prior``; np.argmax then takes the first maximum."""
        tries, successes = table[:, 0], table[:, 1]
        return (successes + SMOOTHING_WEIGHT * prior) / (tries + SMOOTHING_WEIGHT)


def agent_history(
    train_records: Sequence[InteractionRecord], agents: Sequence[str]
) -> np.ndarray:
    """Each agent's training-split metrics, ``(n_agents, len(METRIC_NAMES))``, about 0..1.

    Columns: success rate, mean confidence, mean feedback scaled from 1..5 to 0..1, and mean
    ``log1p(seconds)`` over ``RESPONSE_TIME_SCALE``. An agent absent from the training split
    gets the training split's overall means.
    """
    def metrics(part: Sequence[InteractionRecord]) -> list[float]:
        return [
            float(np.mean([r.success for r in part])),
            float(np.mean([r.confidence for r in part])),
            float(np.mean([(r.user_feedback - 1.0) / 4.0 for r in part])),
            float(np.mean([math.log1p(r.response_time) for r in part])) / RESPONSE_TIME_SCALE,
        ]

    overall = metrics(train_records) if train_records else [0.5, 0.5, 0.5, 0.5]
    by_agent: dict[str, list[InteractionRecord]] = defaultdict(list)
    for record in train_records:
        by_agent[record.chosen_agent].append(record)
    rows = [metrics(by_agent[a]) if by_agent.get(a) else overall for a in agents]
    return np.array(rows, dtype=np.float32).reshape(len(agents), len(METRIC_NAMES))


def dataset_params(
    records: Sequence[InteractionRecord],
    featurizer: HashingFeaturizer | None = None,
    *,
    source: str = SYNTHETIC_SOURCE,
) -> dict[str, Any]:
    """What a run logs about its interaction data: source, size, content hash, featuriser."""
    params: dict[str, Any] = {
        "data.source": source,
        "data.records": len(records),
        "data.sha256": records_sha256(records),
    }
    if featurizer is not None:
        params.update({f"featurizer.{key}": value for key, value in featurizer.config().items()})
    return params


def load_digits_dataset(
    seed: int = 0,
    *,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> LabelledDataset:
    """scikit-learn's handwritten digits (1,797 8x8 images, ships with sklearn, no download).

    Pixels are scaled from 0..16 to 0..1; the split is a seeded permutation, as for logs.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.asarray(digits.data, dtype=np.float64)
    targets = np.asarray(digits.target, dtype=np.int64)
    train_idx, val_idx, test_idx = split_indices(len(targets), seed, val_fraction, test_fraction)
    features = (images / DIGITS_PIXEL_MAX).astype(np.float32)
    digest = hashlib.sha256(images.tobytes() + targets.tobytes()).hexdigest()
    params: dict[str, Any] = {
        "data.source": DIGITS_SOURCE, "data.records": len(targets), "data.sha256": digest,
        "data.features": int(features.shape[1]), "data.classes": 10,
    }
    params.update(_split_params(len(train_idx), len(val_idx), len(test_idx), seed))
    return LabelledDataset(
        train=Split(features[train_idx], targets[train_idx]),
        val=Split(features[val_idx], targets[val_idx]),
        test=Split(features[test_idx], targets[test_idx]),
        class_names=tuple(str(digit) for digit in range(10)),
        params=params,
    )


def load_dataset(
    source: str | os.PathLike[str],
    *,
    seed: int = 0,
    featurizer: HashingFeaturizer | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> LabelledDataset:
    """``"digits"`` for scikit-learn's digits, otherwise the path of a JSON Lines log."""
    if str(source) == "digits":
        return load_digits_dataset(seed, val_fraction=val_fraction, test_fraction=test_fraction)
    return load_interaction_dataset(source, seed=seed, featurizer=featurizer,
                                    val_fraction=val_fraction, test_fraction=test_fraction)


def load_interaction_dataset(
    path: str | os.PathLike[str],
    *,
    seed: int = 0,
    featurizer: HashingFeaturizer | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> InteractionDataset:
    """A JSON Lines interaction log as an :class:`InteractionDataset`; its path is the source."""
    path = Path(path)
    return build_interaction_dataset(
        load_interactions(path), featurizer, seed=seed, val_fraction=val_fraction,
        test_fraction=test_fraction, source=str(path),
    )


def routing_metadata(agents: Sequence[str], featurizer: HashingFeaturizer) -> dict[str, Any]:
    """Metadata of a routing model whose input is the task text and output one logit per agent.

    Keys: ``agents`` (names in logit order), ``featurizer`` (its config), ``route_input``
    (``"task"``) and ``input_dim``.
    """
    return {
        "agents": list(agents),
        "featurizer": featurizer.config(),
        "route_input": ROUTE_INPUT_TASK,
        "input_dim": featurizer.dim,
    }


def build_route_inputs(task_texts: Sequence[str], metadata: Mapping[str, Any]) -> np.ndarray:
    """Featurise raw task descriptions for a routing model, from the model's own metadata.

    ``metadata`` is what the trainer stored (see :func:`routing_metadata`); the result is a
    float32 ``(len(task_texts), input_dim)`` array whose rows match the model's training inputs.
    Raises :class:`ModelError` when the metadata cannot describe such inputs and
    :class:`DataError` when ``task_texts`` is not a list of strings.
    """
    if not isinstance(metadata, Mapping):
        raise ModelError(f"routing metadata must be a mapping, got {type(metadata).__name__}")
    route_input = metadata.get("route_input")
    if route_input != ROUTE_INPUT_TASK:
        raise ModelError(
            f"this model's metadata has route_input={route_input!r}; only {ROUTE_INPUT_TASK!r} "
            "models (input: the task text) can be fed task descriptions"
        )
    for key in ("agents", "featurizer"):
        if key not in metadata:
            raise ModelError(
                f"routing metadata has no {key!r}; the model was not logged for routing"
            )
    if isinstance(task_texts, str) or not all(isinstance(t, str) for t in task_texts):
        raise DataError("task_texts must be a list of task descriptions (strings)")
    try:
        featurizer = HashingFeaturizer.from_config(metadata["featurizer"])
    except TrainerConfigError as error:
        raise ModelError(f"routing metadata: {error}") from None
    expected = metadata.get("input_dim", featurizer.dim)
    if expected != featurizer.dim:
        raise ModelError(
            f"routing metadata disagrees with itself: input_dim {expected} but featurizer dim "
            f"{featurizer.dim}"
        )
    return featurizer.transform(list(task_texts))


def _split_params(n_train: int, n_val: int, n_test: int, seed: int) -> dict[str, Any]:
    return {
        "data.split.train": n_train, "data.split.val": n_val, "data.split.test": n_test,
        "data.split.seed": seed,
    }
