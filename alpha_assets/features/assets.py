"""features.price_features and features.labels: windowed, so a day costs one day of work."""

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    BackfillPolicy,
    Output,
    asset,
)

from alpha_assets.automation import downstream
from alpha_assets.lib.features.price_features import compute_labels, compute_price_features, feature_columns
from partitions import feature_lookback, label_horizon, trading_days, window_dates

PRICES = AssetKey(["raw", "prices"])


@asset(
    key=AssetKey(["features", "price_features"]),
    ins={"prices": AssetIn(key=PRICES, partition_mapping=feature_lookback)},
    partitions_def=trading_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="features",
    kinds={"polars", "delta"},
    automation_condition=downstream,
    check_specs=[
        AssetCheckSpec(
            "features_finite",
            asset=AssetKey(["features", "price_features"]),
            description="no infinite values; NaN only where the lookback is short",
        )
    ],
)
def price_features(context: AssetExecutionContext, prices: pl.DataFrame):
    """Lags 1/5/20/60, rolling mean/std/min/max over 5/20/60, returns 1/5/20, volatility, momentum 60/120 skipping
    5, mean-reversion z-scores and liquidity: computed from the 125-session lookback, written for the window only."""
    start, end = window_dates(*context.partition_time_window)
    df = compute_price_features(prices, start, end) if prices.height else pl.DataFrame()
    cols = feature_columns(df) if df.height else []
    n_inf = (
        int(df.select(pl.sum_horizontal([pl.col(c).is_infinite().sum() for c in cols])).item()) if cols else 0
    )
    yield Output(df, metadata={"rows": df.height, "feature_columns": len(cols),
                               "lookback_rows_read": prices.height})  # fmt: skip
    yield AssetCheckResult(
        check_name="features_finite", passed=n_inf == 0, metadata={"infinite_values": n_inf}
    )


@asset(
    key=AssetKey(["features", "labels"]),
    ins={"prices": AssetIn(key=PRICES, partition_mapping=label_horizon)},
    partitions_def=trading_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="features",
    kinds={"polars", "delta"},
    automation_condition=downstream,
)
def labels(context: AssetExecutionContext, prices: pl.DataFrame):
    """Forward 1/5/20-session returns. A horizon not yet in the data stays null until a later run fills it:
    a label never uses a price that was not known."""
    start, end = window_dates(*context.partition_time_window)
    df = compute_labels(prices, start, end) if prices.height else pl.DataFrame()
    filled = (
        {c: int(df[c].is_not_null().sum()) for c in df.columns if c.startswith("fwd_")} if df.height else {}
    )
    return Output(df, metadata={"rows": df.height, "known_until": str(prices["trade_date"].max()) if prices.height
                                else "", **{f"filled_{k}": v for k, v in filled.items()}})  # fmt: skip
