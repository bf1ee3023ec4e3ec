"""Dev metrics without extra dependencies: pairwise accuracy and AUROC (Mann–Whitney, ties halved)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pairwise_accuracy(positive: Sequence[float], negative: Sequence[float]) -> float | None:
    """The fraction of pairs where the better step scores higher; a tie counts one half."""
    if len(positive) != len(negative):
        raise ValueError(f"{len(positive)} positive scores but {len(negative)} negative ones")
    if not positive:
        return None
    pos, neg = np.asarray(positive, dtype=np.float64), np.asarray(negative, dtype=np.float64)
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def auroc(scores: Sequence[float], labels: Sequence[float]) -> float | None:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (1 positive, 0 negative).

    None when there are no positives or no negatives, or when a label is not 0 or 1 (scalar
    rewards have no ROC curve).
    """
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} scores but {len(labels)} labels")
    y = np.asarray(labels, dtype=np.float64)
    if not len(y) or not np.all((y == 0) | (y == 1)):
        return None
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
