"""The routing data every classifier trainer trains on: tensors, class count, params, metadata.

Why its own module: the distributed job and the architecture search both train a classifier
on the features and labels of a data set from :mod:`agentnn.data`; one preparation (and one
set of checks, raised before any run exists) serves both, and neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentnn.errors import TrainerConfigError
from agentnn.nn_models.training.configs import JSONDict, require_features, require_samples

if TYPE_CHECKING:
    import torch

    from agentnn.data.datasets import LabelledDataset
    from agentnn.data.datasets import Split as DataSplit

MIN_TRAIN_SAMPLES = 16  # below this a shard per rank is a handful of samples


@dataclass
class TensorSplit:
    """The float32 features and integer labels of one split, as torch tensors for training
    (:class:`agentnn.data.Split` is the same split as numpy arrays, as a data set hands it)."""

    x: torch.Tensor
    y: torch.Tensor


@dataclass
class PreparedSplits:
    """What the training loop needs from a data set, checked before any run exists.

    Shared by the distributed trainer and the architecture search; the ``PreparedData`` of
    ``advanced_training`` and ``multi_task_learning`` are those trainers' own (dicts of tensors)."""

    train: TensorSplit
    val: TensorSplit
    test: TensorSplit
    n_classes: int
    params: JSONDict
    metadata: JSONDict
    """Stored with the model: the agents and featuriser of a routing data set."""

    def to(self, device: torch.device) -> PreparedSplits:
        """The splits moved to the training device once, so batches are slices already there."""
        def move(split: TensorSplit) -> TensorSplit:
            return TensorSplit(split.x.to(device), split.y.to(device))

        return PreparedSplits(move(self.train), move(self.val), move(self.test), self.n_classes,
                            self.params, self.metadata)


def _as_split(part: DataSplit) -> TensorSplit:
    import torch

    return TensorSplit(torch.as_tensor(part.features, dtype=torch.float32),
                 torch.as_tensor(part.labels, dtype=torch.long))


def prepare_data(data: LabelledDataset) -> PreparedSplits:
    """Tensors, class count, data params and model metadata of a data-layer data set.

    Raises :class:`TrainerConfigError` for an empty or too-small training set, an empty
    validation set, or splits whose shapes disagree.
    """
    for name in ("train", "val", "params", "n_classes"):
        if not hasattr(data, name):
            raise TrainerConfigError(
                f"data must be a data set from agentnn.data (load_dataset), it has no {name!r}"
            )
    train, val = _as_split(data.train), _as_split(data.val)
    test = _as_split(data.test) if getattr(data, "test", None) is not None else val
    require_samples(len(train.y), MIN_TRAIN_SAMPLES)
    require_samples(len(val.y), 1, "validation set")
    for name, split in (("training", train), ("validation", val), ("test", test)):
        if split.x.dim() != 2 or len(split.x) != len(split.y):
            raise TrainerConfigError(
                f"the {name} split must hold (samples, n_features) features and one label per "
                f"sample, got features {tuple(split.x.shape)} and labels {tuple(split.y.shape)}"
            )
        require_features(int(split.x.shape[1]), int(train.x.shape[1]),
                         f"input features of the {name} split")
    n_classes = int(data.n_classes)
    if n_classes < 2:
        raise TrainerConfigError("the data set has fewer than two classes; nothing to route")
    top = max(int(train.y.max()), int(val.y.max()), int(test.y.max()))
    if top >= n_classes or min(int(train.y.min()), int(val.y.min())) < 0:
        raise TrainerConfigError(f"labels must lie in 0..{n_classes - 1}, found {top}")
    route = getattr(data, "route_metadata", None)
    metadata = dict(route()) if callable(route) else {"class_names": list(data.class_names)}
    return PreparedSplits(train, val, test, n_classes, dict(data.params), metadata)
