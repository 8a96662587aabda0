"""The daily risk report as a state machine: yesterday's state + today's book return -> today's row.

State carried day to day (so a day costs one day, whatever the history): equity, running peak, whether the
drawdown control is engaged, and the multiplier applied to the next day's target weights. VaR figures use the
trailing window of the full-exposure book's daily returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from alpha_assets.lib.risk import RiskLimits, expected_shortfall, historical_var, parametric_var

REPORT_SCHEMA = {
    "trade_date": pl.Date, "book_return": pl.Float64, "multiplier": pl.Float64, "portfolio_return": pl.Float64,
    "equity": pl.Float64, "peak": pl.Float64, "drawdown": pl.Float64, "drawdown_control": pl.Boolean,
    "gross_multiplier_next": pl.Float64, "var_hist_1d": pl.Float64, "var_param_1d": pl.Float64,
    "var_hist_5d": pl.Float64, "var_param_5d": pl.Float64, "es_1d": pl.Float64, "history_days": pl.Int64,
    "breaches": pl.Utf8,
}  # fmt: skip


@dataclass
class RiskState:
    equity: float = 1.0
    peak: float = 1.0
    reduced: bool = False
    next_multiplier: float = 1.0


def book_returns(weights: pl.DataFrame, prices: pl.DataFrame) -> pl.DataFrame:
    """Daily return of yesterday's full-exposure book: sum_i w[i, D-1] * r[i, D] (trade_date, book_return)."""
    px = prices.sort("ticker", "trade_date").with_columns(
        (pl.col("close") / pl.col("close").shift(1).over("ticker") - 1).alias("ret"),
        pl.col("trade_date").shift(1).over("ticker").alias("prev_date"),
    )
    days = px["trade_date"].unique().sort()
    prev = pl.DataFrame({"trade_date": days.slice(1), "book_date": days.slice(0, days.len() - 1)})
    joined = prev.join(
        weights.select(pl.col("trade_date").alias("book_date"), "ticker", "weight"), on="book_date"
    )
    joined = joined.join(px.select("trade_date", "ticker", "ret"), on=["trade_date", "ticker"], how="left")
    out = joined.group_by("trade_date").agg(
        (pl.col("weight") * pl.col("ret").fill_null(0.0)).sum().alias("book_return")
    )
    return (
        prev.select("trade_date")
        .join(out, on="trade_date", how="left")
        .with_columns(pl.col("book_return").fill_null(0.0))
        .sort("trade_date")
    )


def advance(state: RiskState, day: date, book_return: float, history: np.ndarray, limits: RiskLimits) -> dict:
    """Apply today's return at yesterday's multiplier, update drawdown control, compute VaR on ``history``."""
    mult = state.next_multiplier
    port = mult * book_return
    state.equity *= 1.0 + port
    if state.equity >= state.peak:
        state.peak, state.reduced = state.equity, False
    elif 1.0 - state.equity / state.peak > limits.drawdown_threshold:
        state.reduced = True
    state.next_multiplier = limits.reduce_factor if state.reduced else 1.0
    enough = history.size >= 20
    row = {
        "trade_date": day, "book_return": book_return, "multiplier": mult, "portfolio_return": port,
        "equity": state.equity, "peak": state.peak, "drawdown": 1.0 - state.equity / state.peak,
        "drawdown_control": state.reduced, "gross_multiplier_next": state.next_multiplier,
        "var_hist_1d": historical_var(history, limits.level) * mult if enough else None,
        "var_param_1d": parametric_var(history, limits.level) * mult if enough else None,
        "var_hist_5d": historical_var(history, limits.level, horizon=5) * mult if enough else None,
        "var_param_5d": parametric_var(history, limits.level, horizon=5) * mult if enough else None,
        "es_1d": expected_shortfall(history, limits.level) * mult if enough else None,
        "history_days": int(history.size),
    }  # fmt: skip
    breaches = []
    for k, lim in (("var_hist_1d", limits.daily_var_limit), ("var_param_1d", limits.daily_var_limit),
                   ("var_hist_5d", limits.weekly_var_limit), ("var_param_5d", limits.weekly_var_limit)):  # fmt: skip
        if row[k] is not None and row[k] > lim:
            breaches.append(f"{k}={row[k]:.4f} > {lim}")
    if state.reduced:
        breaches.append(
            f"drawdown {row['drawdown']:.3f} > {limits.drawdown_threshold}: exposure x{limits.reduce_factor}"
        )
    row["breaches"] = "; ".join(breaches) or None
    return row
