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

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from alpha_assets.lib.backtest.costs import CostModel

BAR_COLUMNS = ("trade_date", "ticker", "open", "close", "volume")
WEIGHT_COLUMNS = ("trade_date", "ticker", "weight")


@dataclass(frozen=True)
class IndexedBars:
    """Validated bars in input row order with ``session_idx``/``name_idx`` into ``sessions``/``universe``."""

    frame: pl.DataFrame
    sessions: pl.Series  # sorted unique trade dates
    universe: pl.Series  # sorted unique tickers


def _require_columns(frame: pl.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} is missing columns {missing}; has {frame.columns}")


def _name_index(tickers: pl.Series, universe: pl.Series) -> np.ndarray:
    """Position of each ticker in the sorted ``universe`` (-1 when absent)."""
    codes = tickers.cast(pl.Enum(universe.to_list()), strict=False).to_physical()
    return codes.fill_null(-1).cast(pl.Int64).to_numpy()


def _session_index(trade_dates: pl.Series, sessions: pl.Series) -> np.ndarray:
    """Position of each date in the sorted ``sessions`` (-1 when not a session)."""
    days = sessions.to_physical().to_numpy()
    row_days = trade_dates.to_physical().to_numpy()
    idx = np.minimum(np.searchsorted(days, row_days), days.size - 1)
    return np.where(days[idx] == row_days, idx, -1)


def _has_duplicates(major: np.ndarray, minor: np.ndarray, n_minor: int) -> bool:
    keys = np.sort(major * n_minor + minor)
    return bool(keys.size > 1 and (keys[1:] == keys[:-1]).any())


def index_bars(bars: pl.DataFrame, costs: CostModel | None = None) -> IndexedBars:
    """Validate bars and add pre-trade ``sigma``/``adv_shares`` plus panel indices, keeping the row order.

    The fast path builds dense panels from the indices; ``prepare_bars`` is the sorted public view.
    """
    costs = costs or CostModel()
    _require_columns(bars, BAR_COLUMNS, "bars")
    extra = [c for c in ("sigma", "adv_shares") if c in bars.columns]
    frame = bars.select([*BAR_COLUMNS, *extra]).with_columns(
        pl.col("trade_date").cast(pl.Date),
        pl.col("ticker").cast(pl.String),
        pl.col("open", "close", "volume", *extra).cast(pl.Float64),
    )
    if frame.height == 0:
        raise ValueError("bars are empty")
    nulls = frame.select(pl.col(*BAR_COLUMNS).null_count()).row(0)
    if any(nulls):
        raise ValueError(f"bars have nulls in {BAR_COLUMNS}: {nulls}")
    if frame.select(((pl.col("open") <= 0) | (pl.col("close") <= 0) | (pl.col("volume") < 0)).any()).item():
        raise ValueError("bars need positive open/close and non-negative volume")
    sessions = frame["trade_date"].unique().sort()
    universe = frame["ticker"].unique().sort()
    session_idx = _session_index(frame["trade_date"], sessions)
    name_idx = _name_index(frame["ticker"], universe)
    # name-major order: each name's bars contiguous and in date order, for the trailing windows
    name_major_key = name_idx * sessions.len() + session_idx
    by_name = np.argsort(name_major_key, kind="stable")
    ordered_keys = name_major_key[by_name]
    if (ordered_keys[1:] == ordered_keys[:-1]).any():
        raise ValueError("bars have duplicate (trade_date, ticker) rows")

    if "sigma" not in extra or "adv_shares" not in extra:
        by_name_frame = pl.DataFrame(
            {
                "name_idx": name_idx[by_name],
                "close": frame["close"].to_numpy()[by_name],
                "volume": frame["volume"].to_numpy()[by_name],
            }
        )
        session_return = pl.col("close") / pl.col("close").shift(1) - 1.0
        trailing = by_name_frame.select(
            session_return.rolling_std(costs.vol_window, min_samples=2)
            .shift(1)
            .over("name_idx")
            .alias("sigma"),
            pl.col("volume")
            .rolling_mean(costs.adv_window, min_samples=1)
            .shift(1)
            .over("name_idx")
            .alias("adv"),
        )
        for column, source in (("sigma", "sigma"), ("adv_shares", "adv")):
            if column in extra:
                continue
            values = np.empty(frame.height)
            values[by_name] = trailing[source].to_numpy()
            frame = frame.with_columns(pl.Series(column, values, nan_to_null=True))
    frame = frame.with_columns(
        pl.col("sigma").fill_nan(None).fill_null(costs.default_sigma),
        pl.when(pl.col("adv_shares").is_null() | ~(pl.col("adv_shares") > 0))
        .then(pl.col("volume"))
        .otherwise(pl.col("adv_shares"))
        .alias("adv_shares"),
        pl.Series("session_idx", session_idx),
        pl.Series("name_idx", name_idx),
    )
    return IndexedBars(frame, sessions, universe)


def prepare_bars(bars: pl.DataFrame, costs: CostModel | None = None) -> pl.DataFrame:
    """Validate daily bars and add pre-trade ``sigma`` and ``adv_shares`` when they are not given.

    Input: ``trade_date, ticker, open, close, volume`` and optionally ``sigma`` (daily return vol) and
    ``adv_shares``. Output: ``trade_date, ticker, open, close, volume, sigma, adv_shares`` sorted by
    (trade_date, ticker). ``sigma`` = std of close-to-close returns over the name's trailing
    ``costs.vol_window`` bars up to D-1 (``costs.default_sigma`` until two returns exist); ``adv_shares`` =
    mean volume over the trailing ``costs.adv_window`` bars up to D-1 (the session's own volume on a name's
    first bar).
    """
    indexed = index_bars(bars, costs)
    return indexed.frame.sort("session_idx", "name_idx").drop("session_idx", "name_idx")


def index_target_weights(target_weights: pl.DataFrame, bars: IndexedBars) -> pl.DataFrame:
    """Validated ``trade_date, ticker, weight`` rows with ``session_idx``/``name_idx`` (row order kept)."""
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
    session_idx = _session_index(frame["trade_date"], bars.sessions)
    if (session_idx < 0).any():
        unknown = frame.filter(pl.Series(session_idx < 0))["trade_date"].unique().sort()
        raise ValueError(f"target_weights dated outside the bar sessions: {unknown[:5].to_list()}")
    name_idx = _name_index(frame["ticker"], bars.universe)
    if (name_idx < 0).any():
        unknown = frame.filter(pl.Series(name_idx < 0))["ticker"].unique().sort()
        raise ValueError(f"target_weights for tickers without bars: {unknown[:5].to_list()}")
    if _has_duplicates(session_idx, name_idx, bars.universe.len()):
        raise ValueError("target_weights have duplicate (trade_date, ticker) rows")
    return frame.with_columns(pl.Series("session_idx", session_idx), pl.Series("name_idx", name_idx))


def prepare_target_weights(
    target_weights: pl.DataFrame, sessions: list[date] | pl.Series, universe: list[str] | pl.Series
) -> pl.DataFrame:
    """Validate ``trade_date, ticker, weight`` rows against the bar sessions and universe.

    A session with at least one row is a rebalance: every name absent from it gets target weight 0. A
    session without rows keeps the previous targets (in shares). Weights are fractions of equity (signed).
    """
    bars = IndexedBars(
        pl.DataFrame(),
        pl.Series(sessions, dtype=pl.Date).unique().sort(),
        pl.Series(universe, dtype=pl.String).unique().sort(),
    )
    indexed = index_target_weights(target_weights, bars)
    return indexed.sort("session_idx", "name_idx").drop("session_idx", "name_idx")
