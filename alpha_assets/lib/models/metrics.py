"""How good a score is at ranking tomorrow's returns: daily information coefficient (IC), its summary,
quantile spreads, decay over horizons and turnover.

Every measure is cross-sectional and per day (the fund trades a ranking of names each day), then averaged over
days. A daily Spearman IC is computed as the Pearson correlation of within-day ranks, in one vectorised polars
pass. Days with fewer than ``MIN_NAMES`` names are skipped: a correlation over three names is noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import polars as pl

from alpha_assets.lib.determinism import stable_round

MIN_NAMES = 5


def cross_sectional_rank(column: str, by: str | Sequence[str] = "trade_date") -> pl.Expr:
    """``column`` ranked within each ``by`` group, mapped to [-0.5, 0.5] (ties averaged; a lone name -> 0).

    The values are rounded first (``determinism.stable_round``): float noise cannot reorder names, values equal in
    exact arithmetic tie, and averaged ties depend on no row order."""
    x = stable_round(pl.col(column))
    n = x.count().over(by)
    r = x.rank("average").over(by)
    return pl.when(n > 1).then((r - 1) / (n - 1) - 0.5).when(x.is_not_null()).then(0.0)


def daily_ic(
    df: pl.DataFrame, score: str, label: str, method: str = "spearman", by: Sequence[str] = ()
) -> pl.DataFrame:
    """trade_date, *by, ic, n: the per-day correlation of ``score`` with ``label`` over names with both known,
    separately for each group of the ``by`` columns (e.g. model and recipe of a long predictions frame)."""
    if method not in ("spearman", "pearson"):
        raise ValueError(f"method must be 'spearman' or 'pearson', got {method!r}")
    keys = ["trade_date", *by]
    data = (
        df.select(*keys, pl.col(score).cast(pl.Float64).alias("s"), pl.col(label).cast(pl.Float64).alias("y"))
        .with_columns(pl.col("s", "y").fill_nan(None))
        .drop_nulls(["s", "y"])
    )
    if method == "spearman":
        data = data.with_columns(
            stable_round(pl.col(c)).rank("average").over(keys).alias(c) for c in ("s", "y")
        )
    return (
        data.group_by(keys)
        .agg(pl.corr("s", "y").alias("ic"), pl.len().alias("n"))
        .filter(pl.col("n") >= MIN_NAMES)
        .with_columns(pl.col("ic").fill_nan(None))  # a constant score or label on a day has no IC
        .drop_nulls("ic")
        .sort(keys)
    )


def ic_summary(ic: pl.DataFrame | np.ndarray | Sequence[float]) -> dict:
    """ic (mean), ic_std, icir (mean/std), t_stat (mean/std*sqrt(n)), n_days, hit_rate (share of days IC > 0)."""
    values = ic["ic"].to_numpy() if isinstance(ic, pl.DataFrame) else np.asarray(ic, dtype=float)
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0:
        return {
            "ic": float("nan"),
            "ic_std": float("nan"),
            "icir": float("nan"),
            "t_stat": float("nan"),
            "n_days": 0,
            "hit_rate": float("nan"),
        }
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if n > 1 else float("nan")
    icir = mean / std if n > 1 and std > 0 else float("nan")
    return {
        "ic": mean,
        "ic_std": std,
        "icir": icir,
        "t_stat": float(icir * np.sqrt(n)) if np.isfinite(icir) else float("nan"),
        "n_days": n,
        "hit_rate": float((values > 0).mean()),
    }


def _bucketed(df: pl.DataFrame, score: str, label: str, quantiles: int) -> pl.DataFrame:
    """Rows with both values known, each with its within-day quantile 1..quantiles (1 = lowest score)."""
    data = (
        df.select(
            "trade_date", pl.col(score).cast(pl.Float64).alias("s"), pl.col(label).cast(pl.Float64).alias("y")
        )
        .with_columns(pl.col("s", "y").fill_nan(None))
        .drop_nulls()
        .with_columns(pl.len().over("trade_date").alias("n"))
        .filter(pl.col("n") >= max(MIN_NAMES, quantiles))
    )
    # ordinal rank after a stable sort: ties split deterministically so every bucket is filled
    data = data.sort("trade_date", "s", "y")
    r = pl.int_range(pl.len()).over("trade_date")
    return data.with_columns(((r * quantiles) // pl.col("n") + 1).cast(pl.Int32).alias("quantile"))


def quantile_returns(df: pl.DataFrame, score: str, label: str, quantiles: int = 5) -> pl.DataFrame:
    """quantile (1 = lowest score), mean_label (mean over days of the day's mean label), n_days."""
    daily = _bucketed(df, score, label, quantiles).group_by("trade_date", "quantile").agg(pl.col("y").mean())
    return (
        daily.group_by("quantile")
        .agg(pl.col("y").mean().alias("mean_label"), pl.len().alias("n_days"))
        .sort("quantile")
    )


def decile_spread(df: pl.DataFrame, score: str, label: str, quantiles: int = 10) -> float:
    """Mean over days of (mean label of the top quantile - mean label of the bottom quantile)."""
    daily = (
        _bucketed(df, score, label, quantiles)
        .group_by("trade_date")
        .agg(
            pl.col("y").filter(pl.col("quantile") == quantiles).mean().alias("top"),
            pl.col("y").filter(pl.col("quantile") == 1).mean().alias("bottom"),
        )
        .drop_nulls()
    )
    if daily.height == 0:
        return float("nan")
    return float(cast(float, (daily["top"] - daily["bottom"]).mean()))


def ic_decay(
    df: pl.DataFrame, score: str, labels: Sequence[str] = ("fwd_ret_1", "fwd_ret_5", "fwd_ret_20")
) -> dict:
    """Mean daily rank IC of ``score`` with each label present in ``df`` (how fast the signal fades)."""
    out = {}
    for label in labels:
        if label in df.columns:
            out[label] = ic_summary(daily_ic(df, score, label))["ic"]
    return out


def turnover(scores: pl.DataFrame, score: str) -> float:
    """Mean daily (1 - rank autocorrelation): 1 - Spearman correlation of each name's score with its score on the
    previous trade_date, over names present both days. 0 = the ranking never changes, ~1 = a new ranking daily."""
    data = scores.select("trade_date", "ticker", pl.col(score).cast(pl.Float64).alias("s")).drop_nulls()
    days = data.select(pl.col("trade_date").unique().sort())
    prev = days.with_columns(pl.col("trade_date").shift(1).alias("prev_date")).drop_nulls()
    pairs = (
        data.join(prev, on="trade_date")
        .join(data.rename({"trade_date": "prev_date", "s": "s_prev"}), on=["prev_date", "ticker"])
        .with_columns(pl.col("s", "s_prev").rank("average").over("trade_date"))
    )
    daily = (
        pairs.group_by("trade_date")
        .agg(pl.corr("s", "s_prev").alias("rho"), pl.len().alias("n"))
        .filter(pl.col("n") >= MIN_NAMES)
        .with_columns(pl.col("rho").fill_nan(None))
        .drop_nulls()
    )
    if daily.height == 0:
        return float("nan")
    return float(1.0 - cast(float, daily["rho"].mean()))
