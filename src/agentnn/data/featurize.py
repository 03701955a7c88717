"""Task texts to fixed-size float32 vectors, with nothing to download.

A signed hashing vectoriser over word n-grams: each n-gram lands in one of ``dim`` buckets
chosen by a blake2b hash (stable across processes and machines, unlike Python's ``hash()``,
which is salted per process), with a hash-chosen sign so collisions tend to cancel; rows are
L2-normalised. A model trained on these vectors therefore sees the same input for the same text
wherever it is loaded, given only :meth:`HashingFeaturizer.config`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from agentnn.errors import TrainerConfigError

FEATURIZER_KIND = "hashing"
FEATURIZER_VERSION = 1  # bump when the token or hash rules change: old models need the old rules
DEFAULT_DIM = 256  # buckets; enough to keep a few thousand words of task text apart
DEFAULT_NGRAM = 2  # words and word pairs: "tax return" means more than "tax" and "return"
DIM_RANGE = (8, 1 << 20)
NGRAM_RANGE = (1, 3)
MAX_MEMOISED_NGRAMS = 200_000  # bounds the bucket memo of a long-lived featurizer (a stream)
TOKEN_PATTERN = re.compile(r"[a-z0-9]+")


class HashingFeaturizer:
    """Turns task descriptions into ``(n, dim)`` float32 arrays; see the module docstring."""

    def __init__(self, dim: int = DEFAULT_DIM, ngram: int = DEFAULT_NGRAM) -> None:
        _check_int("featurizer dim", dim, *DIM_RANGE)
        _check_int("featurizer ngram", ngram, *NGRAM_RANGE)
        self.dim = dim
        self.ngram = ngram
        self._buckets: dict[str, tuple[int, float]] = {}  # n-gram -> (bucket, sign), memoised

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised row per text; an empty or wordless text gives a zero row."""
        if isinstance(texts, str):
            raise TrainerConfigError(
                "transform() takes a list of texts, got one string; wrap it in a list"
            )
        rows: list[int] = []
        buckets: list[int] = []
        signs: list[float] = []
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise TrainerConfigError(
                    f"text {row} must be a string, got {type(text).__name__}"
                )
            grams = self._ngrams(text)
            rows.extend([row] * len(grams))
            for gram in grams:
                bucket, sign = self._bucket(gram)
                buckets.append(bucket)
                signs.append(sign)
        matrix = np.zeros((len(texts), self.dim), dtype=np.float32)
        # One scatter-add instead of a numpy item update per n-gram: the same sums, in the
        # same order, several times faster for the small batches an online learner sends.
        np.add.at(matrix, (np.asarray(rows, dtype=np.intp), np.asarray(buckets, dtype=np.intp)),
                  np.asarray(signs, dtype=np.float32))
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        np.divide(matrix, norms, out=matrix, where=norms > 0)
        return matrix

    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild this featurizer; stored with every routing model."""
        return {
            "kind": FEATURIZER_KIND, "dim": self.dim, "ngram": self.ngram,
            "version": FEATURIZER_VERSION,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> HashingFeaturizer:
        """Rebuild from :meth:`config`; refuses a kind or version this code cannot reproduce."""
        if not isinstance(config, dict):
            raise TrainerConfigError(f"featurizer config must be a dict, got {config!r:.80}")
        kind = config.get("kind", FEATURIZER_KIND)
        if kind != FEATURIZER_KIND:
            raise TrainerConfigError(
                f"featurizer kind {kind!r} is not supported; only {FEATURIZER_KIND!r} is"
            )
        version = config.get("version", FEATURIZER_VERSION)
        if version != FEATURIZER_VERSION:
            raise TrainerConfigError(
                f"featurizer version {version!r} cannot be reproduced by this agentnn "
                f"(it makes version {FEATURIZER_VERSION}); the model needs a matching agentnn"
            )
        unknown = set(config) - {"kind", "dim", "ngram", "version"}
        if unknown:
            raise TrainerConfigError(f"featurizer config has unknown keys {sorted(unknown)}")
        return cls(dim=config.get("dim", DEFAULT_DIM), ngram=config.get("ngram", DEFAULT_NGRAM))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HashingFeaturizer) and self.config() == other.config()

    def __hash__(self) -> int:
        return hash((self.dim, self.ngram))

    def __repr__(self) -> str:
        return f"HashingFeaturizer(dim={self.dim}, ngram={self.ngram})"

    def _ngrams(self, text: str) -> list[str]:
        words = TOKEN_PATTERN.findall(text.lower())
        grams = list(words)
        for size in range(2, self.ngram + 1):
            grams.extend(" ".join(words[i:i + size]) for i in range(len(words) - size + 1))
        return grams

    def _bucket(self, gram: str) -> tuple[int, float]:
        cached = self._buckets.get(gram)
        if cached is None:
            value = int.from_bytes(
                hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest(), "little"
            )
            cached = (value % self.dim, 1.0 if (value >> 63) & 1 else -1.0)
            if len(self._buckets) >= MAX_MEMOISED_NGRAMS:
                self._buckets.clear()
            self._buckets[gram] = cached
        return cached


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TrainerConfigError(f"{name} must be an integer from {low} to {high}, got {value!r}")
