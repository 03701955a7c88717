"""The short name of the data set a run trained on, kept as a tag so runs can be told apart.

A digits classifier and an agent router are different models; both come out of the same
trainer, so only the data set says which is which. Trainers log the data set's ``data.source``
param (``sklearn.digits``, ``synthetic`` or the path of an interaction log); the tag
:data:`DATASET_TAG` holds its short name (``digits``, ``synthetic``, ``logs.jsonl``), which
``agentnn model runs --dataset`` filters on and its tables show.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath

DATASET_TAG = "agentnn.dataset"
SOURCE_PARAM = "data.source"
SHORT_NAMES = {"sklearn.digits": "digits"}  # built-in sources whose param names their library


def dataset_name(source: str) -> str:
    """``digits`` for scikit-learn's digits, a file's name for a log path, else ``source``."""
    if source in SHORT_NAMES:
        return SHORT_NAMES[source]
    if "/" in source or "\\" in source:
        return PurePath(source.replace("\\", "/")).name or source
    return source


def dataset_of(params: Mapping[str, str], tags: Mapping[str, str]) -> str | None:
    """The run's data set: its tag, else the short name of its ``data.source`` param."""
    if tags.get(DATASET_TAG):
        return tags[DATASET_TAG]
    source = params.get(SOURCE_PARAM)
    return dataset_name(source) if source else None
