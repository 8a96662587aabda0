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

scipy is imported inside the functions that use it (about a second on 2 cores) so that importing this module,
and the code location with it, stays fast.

Speed: the correlation distance is built on the condensed upper triangle in place, and the bisection runs level
by level: the variances of all clusters of up to 64 names on a level come from one batched gather of their
covariance blocks, and clusters larger than the history from their portfolio's daily returns (T·s work rather
than s²). At 5,000 names × 500 days the covariance product and scipy's linkage dominate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

# Clusters up to this size have their variances computed together in one gather.
_BATCH_MAX_SIZE = 64

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
    constant = (
        np.flatnonzero(np.ptp(matrix, axis=0) == 0) if matrix.shape[1] > 1 else np.array([], dtype=np.intp)
    )
    if len(constant):
        raise ValueError(
            f"returns of columns {constant[:10].tolist()} have zero variance; HRP cannot size them"
        )
    return matrix


def covariance(matrix: np.ndarray) -> np.ndarray:
    """Sample covariance (ddof=1) of the columns of a T×N matrix."""
    if matrix.shape[0] < 2:
        raise ValueError(f"HRP needs at least 2 days of returns, got {matrix.shape[0]}")
    centred = matrix - matrix.mean(axis=0)
    # A.T @ A is recognised by numpy and computed as one symmetric rank-k update.
    return (centred.T @ centred) / (matrix.shape[0] - 1)


def correlation_distance(cov: np.ndarray) -> np.ndarray:
    """Condensed correlation distance ``sqrt(clip((1 - ρ) / 2, 0, 1))`` from a covariance matrix."""
    n = cov.shape[0]
    std = np.sqrt(np.diag(cov))
    if (std <= 0).any():
        flat = np.flatnonzero(std <= 0).tolist()
        raise ValueError(f"returns of columns {flat[:10]} have zero variance; HRP cannot size them")
    # Work on the condensed upper triangle in place: half the memory traffic of the full N×N matrix.
    from scipy.spatial.distance import squareform

    dist = squareform(cov, checks=False)
    start = 0
    for row in range(n - 1):
        stop = start + n - 1 - row
        dist[start:stop] /= std[row] * std[row + 1 :]
        start = stop
    np.subtract(1.0, dist, out=dist)
    dist /= 2.0
    np.clip(dist, 0.0, 1.0, out=dist)
    return np.sqrt(dist, out=dist)


def cluster_tree(cov: np.ndarray, *, linkage: str = "single", optimal_ordering: bool = False) -> np.ndarray:
    """scipy linkage matrix of the correlation-distance clustering of the assets in ``cov``."""
    if linkage not in LINKAGES:
        raise ValueError(f"linkage must be one of {LINKAGES}, got {linkage!r}")
    from scipy.cluster import hierarchy

    return hierarchy.linkage(correlation_distance(cov), method=linkage, optimal_ordering=optimal_ordering)


def recursive_bisection(matrix: np.ndarray, cov: np.ndarray, order: np.ndarray) -> np.ndarray:
    """HRP weights (in asset order) from returns, their covariance and a quasi-diagonal asset order.

    Level by level: every range of the ordered list with two or more names is split at its midpoint and both
    halves' inverse-variance cluster variances are computed in one batch.
    """
    n = len(order)
    ordered_inverse_variance = 1.0 / np.diag(cov)[order]
    ordered_weights = np.ones(n)
    starts, stops = np.array([0]), np.array([n])
    while True:
        splittable = stops - starts > 1
        starts, stops = starts[splittable], stops[splittable]
        if starts.size == 0:
            break
        middles = starts + (stops - starts) // 2
        variances = _cluster_variances(
            matrix,
            cov,
            order,
            ordered_inverse_variance,
            np.concatenate([starts, middles]),
            np.concatenate([middles, stops]),
        )
        left_variance, right_variance = variances[: starts.size], variances[starts.size :]
        left_share = 1.0 - left_variance / (left_variance + right_variance)
        ordered_weights *= _segment_factors(
            n,
            np.concatenate([starts, middles]),
            np.concatenate([middles, stops]),
            np.concatenate([left_share, 1.0 - left_share]),
        )
        starts, stops = np.concatenate([starts, middles]), np.concatenate([middles, stops])
    weights = np.empty(n)
    weights[order] = ordered_weights
    return weights


def _segment_factors(n: int, starts: np.ndarray, stops: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """A length-n vector equal to ``factors[k]`` on ``[starts[k], stops[k])`` and 1 elsewhere."""
    lengths = stops - starts
    positions = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
    out = np.ones(n)
    out[positions] = np.repeat(factors, lengths)
    return out


def _cluster_variances(
    matrix: np.ndarray,
    cov: np.ndarray,
    order: np.ndarray,
    ordered_inverse_variance: np.ndarray,
    starts: np.ndarray,
    stops: np.ndarray,
) -> np.ndarray:
    """Variance of the inverse-variance portfolio of each ordered range ``[starts[k], stops[k])``."""
    sizes = stops - starts
    variances = np.empty(sizes.size)
    # Clusters larger than the history are cheaper as the variance of their portfolio's daily returns
    # (T·s operations) than as w'Σw on a gathered s×s covariance block.
    large = np.flatnonzero(sizes > max(_BATCH_MAX_SIZE, matrix.shape[0]))
    for k in large:
        members = order[starts[k] : stops[k]]
        inverse_variance = ordered_inverse_variance[starts[k] : stops[k]]
        portfolio = matrix[:, members] @ (inverse_variance / inverse_variance.sum())
        variances[k] = np.var(portfolio, ddof=1)
    medium = np.flatnonzero((sizes > _BATCH_MAX_SIZE) & (sizes <= max(_BATCH_MAX_SIZE, matrix.shape[0])))
    for k in medium:
        members = order[starts[k] : stops[k]]
        inverse_variance = ordered_inverse_variance[starts[k] : stops[k]]
        weights = inverse_variance / inverse_variance.sum()
        variances[k] = weights @ cov[np.ix_(members, members)] @ weights
    small = np.flatnonzero(sizes <= _BATCH_MAX_SIZE)
    if small.size:
        width = int(sizes[small].max())
        offsets = np.arange(width)
        inside = offsets[None, :] < sizes[small, None]
        # Padding points at the cluster's first member and carries zero weight.
        positions = np.where(inside, starts[small, None] + offsets[None, :], starts[small, None])
        weights = np.where(inside, ordered_inverse_variance[positions], 0.0)
        weights /= weights.sum(axis=1, keepdims=True)
        members = order[positions]
        blocks = cov[members[:, :, None], members[:, None, :]]
        variances[small] = np.einsum("bi,bij,bj->b", weights, blocks, weights)
    return variances


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
    from scipy.cluster import hierarchy

    return recursive_bisection(matrix, cov, hierarchy.leaves_list(tree))
