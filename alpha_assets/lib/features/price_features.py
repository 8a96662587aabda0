"""Temporal price features and forward-return labels, computed per ticker on the trading-session grid.

A day's features read only its lookback (``FEATURE_LOOKBACK`` sessions before it), so the cost of a day does not
grow with history, and computing a window incrementally gives the same rows as a full recompute. Windows count
sessions, not rows: each ticker is placed on the session grid of the input (gaps forward-filled and flagged), so a
missing print does not silently stretch a 20-day window.
"""

from __future__ import annotations

from datetime import date

import polars as pl

LAGS = (1, 5, 20, 60)
WINDOWS = (5, 20, 60)
RETURNS = (1, 5, 20)
FEATURE_LOOKBACK = 125  # sessions: covers mom_120_5 (121) and ret_20 lagged 60 (80)
LABEL_HORIZONS = (1, 5, 20)
ANNUALIZE = 252**0.5


def _grid(prices: pl.DataFrame) -> pl.DataFrame:
    """Each ticker on every session between its first and last print in the input, forward-filled."""
    sessions = prices.select(pl.col("trade_date").unique().sort())
    spans = prices.group_by("ticker").agg(
        pl.col("trade_date").min().alias("first"), pl.col("trade_date").max().alias("last")
    )
    grid = spans.join(sessions, how="cross").filter(
        pl.col("trade_date").is_between(pl.col("first"), pl.col("last"))
    )
    cols = ["open", "high", "low", "close", "volume"]
    g = (
        grid.select("ticker", "trade_date")
        .join(prices.select("ticker", "trade_date", *cols), on=["ticker", "trade_date"], how="left")
        .sort("ticker", "trade_date")
        .with_columns(pl.col("close").is_null().alias("is_filled"))
        .with_columns(pl.col(["open", "high", "low", "close"]).forward_fill().over("ticker"))
        .with_columns(pl.col("volume").fill_null(0))
    )
    return g


def feature_expressions() -> list[pl.Expr]:
    c = pl.col("close")
    r1 = pl.col("ret_1")
    exprs: list[pl.Expr] = []
    for k in LAGS:
        exprs.append(r1.shift(k).over("ticker").alias(f"ret_1_lag_{k}"))
    for k in (5, 20, 60):
        exprs.append(pl.col("ret_5").shift(k).over("ticker").alias(f"ret_5_lag_{k}"))
    for k in (20, 60):
        exprs.append(pl.col("ret_20").shift(k).over("ticker").alias(f"ret_20_lag_{k}"))
    for w in WINDOWS:
        exprs += [
            r1.rolling_mean(w).over("ticker").alias(f"ret_mean_{w}"),
            r1.rolling_std(w).over("ticker").alias(f"ret_std_{w}"),
            r1.rolling_min(w).over("ticker").alias(f"ret_min_{w}"),
            r1.rolling_max(w).over("ticker").alias(f"ret_max_{w}"),
            (c / c.rolling_mean(w).over("ticker") - 1).alias(f"close_to_mean_{w}"),
            (c / c.rolling_min(w).over("ticker") - 1).alias(f"close_to_min_{w}"),
            (c / c.rolling_max(w).over("ticker") - 1).alias(f"close_to_max_{w}"),
            (c.rolling_std(w).over("ticker") / c.rolling_mean(w).over("ticker")).alias(f"close_cv_{w}"),
        ]
    exprs += [
        (r1.rolling_std(20).over("ticker") * ANNUALIZE).alias("vol_20"),
        (r1.rolling_std(60).over("ticker") * ANNUALIZE).alias("vol_60"),
        (r1.rolling_std(20).over("ticker") / r1.rolling_std(60).over("ticker")).alias("vol_ratio_20_60"),
        (c / c.shift(20).over("ticker") - 1).alias("mom_20"),
        (c.shift(5).over("ticker") / c.shift(60).over("ticker") - 1).alias("mom_60_5"),
        (c.shift(5).over("ticker") / c.shift(120).over("ticker") - 1).alias("mom_120_5"),
        ((c - c.rolling_mean(20).over("ticker")) / c.rolling_std(20).over("ticker")).alias("zscore_20"),
        ((c - c.rolling_mean(60).over("ticker")) / c.rolling_std(60).over("ticker")).alias("zscore_60"),
        (pl.col("volume") + 1).log().alias("log_volume"),
        (
            pl.col("volume").rolling_mean(5).over("ticker") / pl.col("volume").rolling_mean(20).over("ticker")
        ).alias("volume_ratio_5_20"),
        (pl.col("dollar_volume").rolling_mean(20).over("ticker") + 1).log().alias("log_dollar_volume_20"),
        (r1.abs() / (pl.col("dollar_volume") + 1))
        .rolling_mean(20)
        .over("ticker")
        .mul(1e6)
        .alias("amihud_20"),
        ((pl.col("high") - pl.col("low")) / c).alias("hl_range"),
        ((pl.col("high") - pl.col("low")) / c).rolling_mean(20).over("ticker").alias("hl_range_mean_20"),
        (pl.col("open") / c.shift(1).over("ticker") - 1).alias("overnight_gap"),
        (c / pl.col("open") - 1).alias("intraday_ret"),
    ]
    return exprs


def compute_price_features(prices: pl.DataFrame, start: date, end: date) -> pl.DataFrame:
    """Features for every ticker-session in [start, end]; ``prices`` must cover the lookback before ``start``."""
    g = _grid(prices)
    c = pl.col("close")
    g = g.with_columns(
        *[(c / c.shift(k).over("ticker") - 1).alias(f"ret_{k}") for k in RETURNS],
        (c / c.shift(1).over("ticker")).log().alias("log_ret_1"),
        (c * pl.col("volume")).alias("dollar_volume"),
    )
    g = g.with_columns(feature_expressions())
    out = g.filter(pl.col("trade_date").is_between(start, end)).drop(
        "open", "high", "low", "volume", "dollar_volume"
    )
    return out.rename({"close": "close"}).sort("trade_date", "ticker")


def feature_columns(df: pl.DataFrame) -> list[str]:
    return [c for c in df.columns if c not in ("trade_date", "ticker", "close", "is_filled")]


def compute_labels(
    prices: pl.DataFrame, start: date, end: date, known_until: date | None = None
) -> pl.DataFrame:
    """Forward close-to-close returns over 1/5/20 sessions for days in [start, end].

    A label for day D and horizon h is filled only if the session D+h is within the data (``known_until``
    defaults to the last date in ``prices``); otherwise it is null and is filled by a later run.
    """
    g = _grid(prices)
    last = known_until or g["trade_date"].max()
    sessions = g.select(pl.col("trade_date").unique().sort())["trade_date"]
    idx = {d: i for i, d in enumerate(sessions.to_list())}
    c = pl.col("close")
    exprs = []
    for h in LABEL_HORIZONS:
        exprs.append((c.shift(-h).over("ticker") / c - 1).alias(f"fwd_ret_{h}"))
        exprs.append(pl.col("trade_date").shift(-h).over("ticker").alias(f"_end_{h}"))
    g = g.with_columns(exprs)
    # The ticker's row h places ahead must be exactly h sessions ahead (the grid guarantees it between first and
    # last print), and not beyond the known data.
    sess_list = sessions.to_list()
    horizon_end = {
        h: [sess_list[idx[d] + h] if idx[d] + h < len(sess_list) else None for d in sess_list]
        for h in LABEL_HORIZONS
    }
    ends = pl.DataFrame({"trade_date": sess_list, **{f"_due_{h}": horizon_end[h] for h in LABEL_HORIZONS}},
                        schema={"trade_date": pl.Date, **{f"_due_{h}": pl.Date for h in LABEL_HORIZONS}})  # fmt: skip
    g = g.join(ends, on="trade_date", how="left")
    cols = []
    for h in LABEL_HORIZONS:
        ok = (pl.col(f"_end_{h}") == pl.col(f"_due_{h}")) & (pl.col(f"_due_{h}") <= last)
        cols.append(pl.when(ok).then(pl.col(f"fwd_ret_{h}")).otherwise(None).alias(f"fwd_ret_{h}"))
    g = g.with_columns(cols)
    out = g.filter(pl.col("trade_date").is_between(start, end)).select(
        "trade_date", "ticker", *[f"fwd_ret_{h}" for h in LABEL_HORIZONS]
    )
    return out.sort("trade_date", "ticker")
