"""Input checking and preparation shared by both backtest paths: bars with pre-trade sigma/ADV, target weights.

Timing convention (no look-ahead), identical in the engine and the fast path:

* ``target_weights`` dated D are decided with data up to the close of session D. They are turned into target
  shares at the close of D (``weight * equity_D / close_D``) and executed at the **open of the next session**
  D+1 at the open price (plus costs).
* ``sigma`` and ``adv_shares`` on the bar of session D are what is known *before the open* of D: computed from
  closes and volumes up to D-1 (trailing windows, shifted one session). Precomputed columns must follow the
  same convention.
* The participation cap uses the volume of the execution session (as simulators commonly do with the bar's
  volume); it only limits fills, it never informs the decision.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from alpha_assets.lib.backtest.costs import CostModel

BAR_COLUMNS = ("trade_date", "ticker", "open", "close", "volume")
WEIGHT_COLUMNS = ("trade_date", "ticker", "weight")


def _require_columns(frame: pl.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} is missing columns {missing}; has {frame.columns}")


def prepare_bars(bars: pl.DataFrame, costs: CostModel | None = None) -> pl.DataFrame:
    """Validate daily bars and add pre-trade ``sigma`` and ``adv_shares`` when they are not given.

    Input: ``trade_date, ticker, open, close, volume`` and optionally ``sigma`` (daily return vol) and
    ``adv_shares``. Output: ``trade_date, ticker, open, close, volume, sigma, adv_shares`` sorted by
    (trade_date, ticker). ``sigma`` = std of close-to-close returns over the trailing ``costs.vol_window``
    sessions up to D-1 (``costs.default_sigma`` until two returns exist); ``adv_shares`` = mean volume over
    the trailing ``costs.adv_window`` sessions up to D-1 (the session's own volume on a name's first bar).
    """
    costs = costs or CostModel()
    _require_columns(bars, BAR_COLUMNS, "bars")
    extra = [c for c in ("sigma", "adv_shares") if c in bars.columns]
    frame = bars.select([*BAR_COLUMNS, *extra]).with_columns(
        pl.col("trade_date").cast(pl.Date),
        pl.col("ticker").cast(pl.String),
        pl.col("open", "close", "volume", *extra).cast(pl.Float64),
    )
    nulls = frame.select(pl.col("trade_date", "ticker", "open", "close", "volume").null_count()).row(0)
    if any(nulls):
        raise ValueError(f"bars have nulls in trade_date/ticker/open/close/volume: {nulls}")
    frame = frame.sort("ticker", "trade_date")
    same_key = (pl.col("ticker") == pl.col("ticker").shift(1)) & (
        pl.col("trade_date") == pl.col("trade_date").shift(1)
    )
    if frame.select(same_key.any()).item():
        raise ValueError("bars have duplicate (trade_date, ticker) rows")
    if frame.select(((pl.col("open") <= 0) | (pl.col("close") <= 0) | (pl.col("volume") < 0)).any()).item():
        raise ValueError("bars need positive open/close and non-negative volume")

    if "sigma" not in frame.columns:
        session_return = pl.col("close") / pl.col("close").shift(1) - 1.0
        frame = frame.with_columns(
            session_return.rolling_std(costs.vol_window, min_samples=2).shift(1).over("ticker").alias("sigma")
        )
    if "adv_shares" not in frame.columns:
        frame = frame.with_columns(
            pl.col("volume")
            .rolling_mean(costs.adv_window, min_samples=1)
            .shift(1)
            .over("ticker")
            .alias("adv_shares")
        )
    frame = frame.with_columns(
        pl.col("sigma").fill_null(costs.default_sigma).fill_nan(costs.default_sigma),
        pl.when(pl.col("adv_shares").is_null() | ~(pl.col("adv_shares") > 0))
        .then(pl.col("volume"))
        .otherwise(pl.col("adv_shares"))
        .alias("adv_shares"),
    )
    return frame.sort("trade_date", "ticker")


def prepare_target_weights(
    target_weights: pl.DataFrame, sessions: list[date] | pl.Series, universe: list[str] | pl.Series
) -> pl.DataFrame:
    """Validate ``trade_date, ticker, weight`` rows against the bar sessions and universe.

    A session with at least one row is a rebalance: every name absent from it gets target weight 0. A
    session without rows keeps the previous targets (in shares). Weights are fractions of equity (signed).
    """
    _require_columns(target_weights, WEIGHT_COLUMNS, "target_weights")
    frame = target_weights.select(WEIGHT_COLUMNS).with_columns(
        pl.col("trade_date").cast(pl.Date),
        pl.col("ticker").cast(pl.String),
        pl.col("weight").cast(pl.Float64),
    )
    if frame.null_count().sum_horizontal().item():
        raise ValueError("target_weights have nulls")
    if not frame.select(pl.col("weight").is_finite().all()).item():
        raise ValueError("target_weights have non-finite weights")
    if frame.select(pl.struct("trade_date", "ticker").is_duplicated().any()).item():
        raise ValueError("target_weights have duplicate (trade_date, ticker) rows")
    known_sessions = pl.DataFrame({"trade_date": pl.Series(sessions, dtype=pl.Date)})
    unknown_dates = frame.join(known_sessions, on="trade_date", how="anti")
    if unknown_dates.height:
        raise ValueError(
            f"target_weights dated outside the bar sessions: {unknown_dates['trade_date'].unique().sort()[:5].to_list()}"
        )
    known_tickers = pl.DataFrame({"ticker": pl.Series(universe, dtype=pl.String)})
    unknown_tickers = frame.join(known_tickers, on="ticker", how="anti")
    if unknown_tickers.height:
        raise ValueError(
            f"target_weights for tickers without bars: {unknown_tickers['ticker'].unique()[:5].to_list()}"
        )
    return frame.sort("trade_date", "ticker")
