"""One day's target book from that day's inputs: the function the asset calls and an as-of rebuild calls again."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from alpha_assets.lib.portfolio.limits import PortfolioLimits, build_target_weights

WEIGHT_SCHEMA = {
    "trade_date": pl.Date,
    "ticker": pl.Utf8,
    "side": pl.Utf8,
    "weight": pl.Float64,
    "hrp_weight": pl.Float64,
    "alpha_score": pl.Float64,
    "sector": pl.Utf8,
    "country": pl.Utf8,
    "adv_usd": pl.Float64,
    "corr_group": pl.Int64,
    "binding_limit": pl.Utf8,
}


# Sessions of returns the book's HRP covariance is estimated over (the fund's rule; PortfolioConfig.cov_window).
COV_WINDOW = 60


def trailing_returns(prices: pl.DataFrame, day: date, window: int) -> pl.DataFrame:
    """Wide (trade_date x ticker) close-to-close returns over the ``window`` sessions ending at ``day``."""
    px = prices.filter(pl.col("trade_date") <= day).sort("ticker", "trade_date")
    rets = px.with_columns((pl.col("close") / pl.col("close").shift(1).over("ticker") - 1).alias("ret"))
    days = rets["trade_date"].unique().sort().to_list()[-window:]
    wide = rets.filter(pl.col("trade_date").is_in(days)).pivot(on="ticker", index="trade_date", values="ret")
    return wide.sort("trade_date")


def day_target_weights(
    day: date,
    scores: pl.DataFrame,
    prices: pl.DataFrame,
    universe: pl.DataFrame,
    limits: PortfolioLimits,
    cov_window: int = COV_WINDOW,
    held: dict[str, str] | None = None,
) -> pl.DataFrame:
    """Target weights for ``day``: ``scores`` (ticker, alpha_score) known at the close of ``day``, ``prices``
    covering ``cov_window`` sessions up to ``day``, ``universe`` the point-in-time members of ``day``; ``held``
    the previous book's ticker -> side (for ``limits.hold_band``)."""
    wide = trailing_returns(prices, day, cov_window + 1).slice(1)  # the first row has no return
    complete = [
        c
        for c in wide.columns
        if c != "trade_date" and wide[c].null_count() == 0 and np.isfinite(wide[c].to_numpy()).all()
    ]
    meta = universe.select("ticker", "sector", "country", "adv_usd").unique("ticker", keep="first")
    alpha = scores.filter(pl.col("ticker").is_in(complete) & pl.col("ticker").is_in(meta["ticker"].to_list()))
    w = build_target_weights(alpha, wide.select(["trade_date", *complete]), meta, limits, held)
    # polars types cast()'s Mapping key as a union (keys are invariant): a dict[str, dtype], its documented use, misses it
    return w.with_columns(pl.lit(day).alias("trade_date")).select(list(WEIGHT_SCHEMA)).cast(WEIGHT_SCHEMA)  # type: ignore[arg-type]
