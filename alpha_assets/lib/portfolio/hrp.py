"""Hierarchical Risk Parity (López de Prado, 2016) sizing of a book from its names' daily returns.

Steps, chosen to reproduce riskfolio-lib's ``HCPortfolio.optimization(model="HRP", codependence="pearson",
rm="MV")`` to floating-point precision:

1. Pearson correlation ρ and sample covariance (ddof=1) of the T×N returns.
2. Distance ``d = sqrt(clip((1 - ρ) / 2, 0, 1))``, fed *directly* to ``scipy.cluster.hierarchy.linkage`` as a
   condensed distance matrix (no distance-of-distance step).
3. Quasi-diagonalisation: the tree's leaf order (``leaves_list``), optionally with scipy's optimal leaf ordering.
4. Recursive bisection of the *ordered list* (each range is split at its midpoint, ``len // 2``, not along the
   tree's branches); each half gets inverse-variance weights inside, its cluster variance is ``w' Σ w``, and
   the left half receives ``1 - v_left / (v_left + v_right)`` of the parent's weight.

The ordered covariance is permuted once so that every cluster is a contiguous block (a view, no copy): the
whole bisection costs about ``2 N²`` multiply-adds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

LINKAGES = ("single", "complete", "average", "weighted", "centroid", "median", "ward")


def returns_matrix(returns: Any) -> np.ndarray:
    """Return a float64 T×N matrix from a numpy array or a polars DataFrame (numeric columns are assets).

    Non-numeric columns of a frame (a ``trade_date``, say) are ignored. Raises ``ValueError`` on missing or
    non-finite values: HRP needs a full history for every name.
    """
    if isinstance(returns, pl.DataFrame):
        numeric = [name for name, dtype in returns.schema.items() if dtype.is_numeric()]
        matrix = returns.select(numeric).to_numpy().astype(np.float64, copy=False)
    else:
        matrix = np.asarray(returns, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"returns must be a T×N matrix, got shape {matrix.shape}")
    if matrix.shape[1] == 0:
        raise ValueError("returns has no asset columns")
    if not np.isfinite(matrix).all():
        raise ValueError("returns contain missing or non-finite values; fill or drop them before HRP")
    return matrix


def covariance(matrix: np.ndarray) -> np.ndarray:
    """Sample covariance (ddof=1) of the columns of a T×N matrix."""
    if matrix.shape[0] < 2:
        raise ValueError(f"HRP needs at least 2 days of returns, got {matrix.shape[0]}")
    centred = matrix - matrix.mean(axis=0)
    # A.T @ A is recognised by numpy and computed as one symmetric rank-k update.
    return (centred.T @ centred) / (matrix.shape[0] - 1)


def correlation_distance(cov: np.ndarray) -> np.ndarray:
    """Condensed correlation distance ``sqrt((1 - ρ) / 2)`` from a covariance matrix."""
    std = np.sqrt(np.diag(cov))
    if (std <= 0).any():
        flat = np.flatnonzero(std <= 0).tolist()
        raise ValueError(f"returns of columns {flat[:10]} have zero variance; HRP cannot size them")
    corr = cov / std[:, None] / std[None, :]
    np.clip(corr, -1.0, 1.0, out=corr)
    dist = np.sqrt(np.clip((1.0 - corr) / 2.0, 0.0, 1.0))
    return squareform(dist, checks=False)


def cluster_tree(cov: np.ndarray, *, linkage: str = "single", optimal_ordering: bool = False) -> np.ndarray:
    """scipy linkage matrix of the correlation-distance clustering of the assets in ``cov``."""
    if linkage not in LINKAGES:
        raise ValueError(f"linkage must be one of {LINKAGES}, got {linkage!r}")
    return hierarchy.linkage(
        correlation_distance(cov), method=linkage, optimal_ordering=optimal_ordering
    )


def recursive_bisection(cov: np.ndarray, order: np.ndarray) -> np.ndarray:
    """HRP weights from a covariance matrix and a quasi-diagonal asset order (weights in asset order)."""
    n = len(order)
    ordered_cov = cov[np.ix_(order, order)]
    inverse_variance = 1.0 / np.diag(ordered_cov)
    ordered_weights = np.ones(n)
    pending = [(0, n)]
    while pending:
        start, stop = pending.pop()
        if stop - start < 2:
            continue
        middle = start + (stop - start) // 2
        left_variance = _cluster_variance(ordered_cov, inverse_variance, start, middle)
        right_variance = _cluster_variance(ordered_cov, inverse_variance, middle, stop)
        left_share = 1.0 - left_variance / (left_variance + right_variance)
        ordered_weights[start:middle] *= left_share
        ordered_weights[middle:stop] *= 1.0 - left_share
        pending.append((start, middle))
        pending.append((middle, stop))
    weights = np.empty(n)
    weights[order] = ordered_weights
    return weights


def _cluster_variance(ordered_cov: np.ndarray, inverse_variance: np.ndarray, start: int, stop: int) -> float:
    """Variance of the inverse-variance portfolio of the contiguous cluster ``[start, stop)``."""
    weights = inverse_variance[start:stop] / inverse_variance[start:stop].sum()
    return float(weights @ ordered_cov[start:stop, start:stop] @ weights)


def hrp_weights(returns: Any, *, linkage: str = "single", optimal_ordering: bool = False) -> np.ndarray:
    """Long-only HRP weights (summing to 1) for the columns of a T×N returns matrix or polars frame.

    ``linkage`` is any scipy linkage method (single, complete, average, weighted, centroid, median, ward);
    ``optimal_ordering`` is scipy's optimal leaf ordering (riskfolio's ``leaf_order``; slow beyond ~1,000 names).
    The weights are in the order of the input's (numeric) columns.
    """
    matrix = returns_matrix(returns)
    if matrix.shape[1] == 1:
        return np.ones(1)
    cov = covariance(matrix)
    tree = cluster_tree(cov, linkage=linkage, optimal_ordering=optimal_ordering)
    return recursive_bisection(cov, hierarchy.leaves_list(tree))
