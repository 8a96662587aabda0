"""features.price_features and features.labels: windowed, so a day costs one day of work.

A window longer than one chunk (about ``CHUNK_CELLS`` ticker-sessions, or ``ALPHA_PRICE_CHUNK_SESSIONS`` sessions)
is computed and written chunk by chunk (``WindowChunks``: one Delta transaction per chunk), so a 10-year single-run
backfill at 5,000 names holds one chunk in memory, not the whole window. Day runs and short windows are one frame,
as before.
"""

import os
from collections.abc import Iterator
from datetime import date

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    Failure,
    Output,
    asset,
)

from alpha_assets.automation import downstream
from alpha_assets.keys import FEATURES_LABELS, FEATURES_PRICE_FEATURES, RAW_PRICES
from alpha_assets.lib.features.price_features import (
    LABEL_HORIZONS,
    chunk_sessions,
    compute_labels,
    compute_price_features,
    feature_columns,
    iter_labels,
    iter_price_features,
    price_feature_names,
)
from partitions import feature_lookback, label_horizon, trading_days, window_dates
from resources.lake import WindowChunks

CHUNK_ENV = "ALPHA_PRICE_CHUNK_SESSIONS"
LABEL_COLUMNS = tuple(f"fwd_ret_{h}" for h in LABEL_HORIZONS)


def _chunking(prices: pl.DataFrame, start: date, end: date) -> int | None:
    """Sessions per chunk when the window needs more than one chunk, else None (one frame, as for a day run)."""
    raw = os.environ.get(CHUNK_ENV, "").strip()
    if raw and (not raw.isdigit() or int(raw) < 1):
        raise ValueError(f"{CHUNK_ENV} must be a positive number of sessions, not {raw!r}")
    step = int(raw) if raw else chunk_sessions(prices["ticker"].n_unique())
    sessions = prices.filter(pl.col("trade_date").is_between(start, end))["trade_date"].n_unique()
    return step if sessions > step else None


def _require_prices(prices: pl.DataFrame, start: date, end: date, asset: str) -> None:
    """A window with no prices of its own is refused, rather than written empty (or failing on the empty frame's
    missing columns): the vendor files of those sessions have not been ingested."""
    if prices.height and prices["trade_date"].is_between(start, end).any():
        return
    when = str(start) if start == end else f"{start}..{end}"
    known = f" (raw/prices ends at {prices['trade_date'].max()})" if prices.height else ""
    raise Failure(
        f"{asset}: no prices for {when} in raw/prices{known}; nothing written. Ingest that day's vendor files "
        f"first (alpha materialize --from {start} --to {end} --select raw/prices)"
    )


def _infinite(df: pl.DataFrame) -> int:
    cols = feature_columns(df)
    return (
        int(df.select(pl.sum_horizontal([pl.col(c).is_infinite().sum() for c in cols])).item()) if cols else 0
    )


@asset(
    key=FEATURES_PRICE_FEATURES,
    ins={"prices": AssetIn(key=RAW_PRICES, partition_mapping=feature_lookback)},
    partitions_def=trading_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="features",
    kinds={"polars", "delta"},
    automation_condition=downstream,
    check_specs=[
        AssetCheckSpec(
            "features_finite",
            asset=FEATURES_PRICE_FEATURES,
            description="no infinite values; NaN only where the lookback is short",
        )
    ],
)
def price_features(context: AssetExecutionContext, prices: pl.DataFrame):
    """Lags 1/5/20/60, rolling mean/std/min/max over 5/20/60, returns 1/5/20, volatility, momentum 60/120 skipping
    5, mean-reversion z-scores and liquidity: computed from the 125-session lookback, written for the window only."""
    start, end = window_dates(*context.partition_time_window)
    _require_prices(prices, start, end, "/".join(FEATURES_PRICE_FEATURES.path))
    step = _chunking(prices, start, end) if prices.height else None
    if step is None:
        df = compute_price_features(prices, start, end) if prices.height else pl.DataFrame()
        n_inf = _infinite(df) if df.height else 0
        yield Output(
            df,
            metadata={
                "rows": df.height,
                "feature_columns": len(feature_columns(df)) if df.height else 0,
                "lookback_rows_read": prices.height,
            },
        )
    else:
        # The IO manager writes each chunk as it is produced; the check's count is complete once it has.
        seen = {"inf": 0}

        def chunks() -> Iterator[pl.DataFrame]:
            for df in iter_price_features(prices, start, end, sessions=step):
                seen["inf"] += _infinite(df)
                yield df
                del df  # written by now: not held while the next chunk is computed

        out = WindowChunks(chunks(), metadata=lambda: {"infinite_values": seen["inf"]})
        yield Output(
            out,
            metadata={
                "feature_columns": len(price_feature_names()),
                "lookback_rows_read": prices.height,
                "chunk_sessions": step,
            },
        )
        n_inf = seen["inf"]
    yield AssetCheckResult(
        check_name="features_finite", passed=n_inf == 0, metadata={"infinite_values": n_inf}
    )


@asset(
    key=FEATURES_LABELS,
    ins={"prices": AssetIn(key=RAW_PRICES, partition_mapping=label_horizon)},
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
    _require_prices(prices, start, end, "/".join(FEATURES_LABELS.path))
    known = str(prices["trade_date"].max()) if prices.height else ""
    step = _chunking(prices, start, end) if prices.height else None
    if step is None:
        df = compute_labels(prices, start, end) if prices.height else pl.DataFrame()
        filled = (
            {c: int(df[c].is_not_null().sum()) for c in df.columns if c.startswith("fwd_")}
            if df.height
            else {}
        )
        return Output(
            df,
            metadata={
                "rows": df.height,
                "known_until": known,
                **{f"filled_{k}": v for k, v in filled.items()},
            },
        )

    filled = dict.fromkeys(LABEL_COLUMNS, 0)

    def chunks() -> Iterator[pl.DataFrame]:
        for df in iter_labels(prices, start, end, sessions=step):
            for c in filled:
                filled[c] += df.height - df[c].null_count()
            yield df
            del df  # written by now: not held while the next chunk is computed

    return Output(
        WindowChunks(chunks(), metadata=lambda: {f"filled_{k}": v for k, v in filled.items()}),
        metadata={"known_until": known, "chunk_sessions": step},
    )
