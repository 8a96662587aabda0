"""Pictures of a book for the asset page: the HRP cluster tree the weights were sized on."""

from __future__ import annotations

import io

import numpy as np

from alpha_assets.lib.portfolio.hrp import cluster_tree, covariance


def hrp_dendrogram_png(
    returns: np.ndarray,
    tickers: list[str],
    title: str,
    *,
    linkage: str = "single",
    max_leaves: int = 60,
) -> bytes:
    """Draw the correlation-distance cluster tree of ``returns`` (T x N, columns in ``tickers`` order) that HRP
    bisects, with the same linkage, as PNG bytes. Above ``max_leaves`` names the tree is cut to its last
    ``max_leaves`` merges (leaf labels then give the cluster sizes): 5,000 labels are not readable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.cluster import hierarchy

    if returns.shape[1] != len(tickers):
        raise ValueError(f"{returns.shape[1]} return columns for {len(tickers)} tickers")
    if len(tickers) < 2:
        raise ValueError("a cluster tree needs at least two names")
    tree = cluster_tree(covariance(returns), linkage=linkage)
    truncated = len(tickers) > max_leaves
    fig, ax = plt.subplots(figsize=(min(4 + 0.22 * min(len(tickers), max_leaves), 16), 4.5))
    hierarchy.dendrogram(
        tree,
        ax=ax,
        labels=None if truncated else list(tickers),
        leaf_rotation=90,
        leaf_font_size=7,
        truncate_mode="lastp" if truncated else None,
        p=max_leaves,
        color_threshold=None,
    )
    ax.set_ylabel("correlation distance sqrt((1 - rho) / 2)")
    ax.set_title(title + (f" (last {max_leaves} merges of {len(tickers)} names)" if truncated else ""))
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, dpi=90, format="png")
    plt.close(fig)
    return out.getvalue()
