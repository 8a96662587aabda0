"""The daily risk report as a state machine: yesterday's state + today's book return -> today's row.

State carried day to day (so a day costs one day, whatever the history): equity, running peak, whether the
drawdown control is engaged, the multiplier applied to the next day's target weights and the one the book held
yesterday. **Equity is the fund's net asset value**: the traded book (target x multiplier) earns its return, then
pays the costs of the day's trades at the open (the backtest's ``CostModel``: square-root impact, volume-share
slippage, commission, sell fee, on the fund's NAV in dollars) and the overnight borrow on its shorts. So drawdown
and the drawdown control follow the same net P&L as the backtest and the dashboard's Fund page, not the book's
return before costs (which once reported a 6.9% worst drawdown while the fund was down 14.3%). VaR figures use
the trailing window of the full-exposure book's daily returns (the market risk of the positions held).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from alpha_assets.lib.backtest.costs import CostModel, trade_costs
from alpha_assets.lib.backtest.data import prepare_bars
from alpha_assets.lib.risk import RiskLimits, expected_shortfall, historical_var, parametric_var

REPORT_SCHEMA = {
    "trade_date": pl.Date,
    "book_return": pl.Float64,
    "multiplier": pl.Float64,
    "portfolio_return": pl.Float64,
    "equity": pl.Float64,
    "peak": pl.Float64,
    "drawdown": pl.Float64,
    "drawdown_control": pl.Boolean,
    "gross_multiplier_next": pl.Float64,
    "var_hist_1d": pl.Float64,
    "var_param_1d": pl.Float64,
    "var_hist_5d": pl.Float64,
    "var_param_5d": pl.Float64,
    "es_1d": pl.Float64,
    "history_days": pl.Int64,
    "breaches": pl.Utf8,
    "gross_return": pl.Float64,
    "trading_cost": pl.Float64,
    "financing": pl.Float64,
    "turnover": pl.Float64,
}


@dataclass
class RiskState:
    equity: float = 1.0
    peak: float = 1.0
    reduced: bool = False
    next_multiplier: float = 1.0
    held_multiplier: float = 1.0  # the multiplier of the book held coming into the day (yesterday's)


@dataclass(frozen=True)
class DayTrades:
    """What a day's costs need: the book held coming in (dated D-2) and the one executed at D's open (dated D-1),
    aligned by name, with each name's open, volume and pre-trade sigma / ADV of day D."""

    held: np.ndarray
    target: np.ndarray
    open: np.ndarray
    volume: np.ndarray
    sigma: np.ndarray
    adv_shares: np.ndarray


def day_trades(weights: pl.DataFrame, prices: pl.DataFrame, costs: CostModel) -> dict[date, DayTrades]:
    """Per trading day D with a book dated D-1: the trades the fund makes at D's open, as weights (before the
    drawdown multiplier, which ``advance`` applies). A name without a bar on D cannot trade and is left out."""
    if weights.height == 0 or prices.height == 0:
        return {}
    bars = prices.select("trade_date", "ticker", "open", "close", "volume").filter(
        (pl.col("open") > 0) & (pl.col("close") > 0) & (pl.col("volume") >= 0)
    )  # a name without a usable bar cannot trade that day
    if bars.height == 0:
        return {}
    bars = prepare_bars(bars, costs)
    days = bars["trade_date"].unique().sort().to_list()
    books = {
        d: frame for (d,), frame in weights.select("trade_date", "ticker", "weight").group_by("trade_date")
    }
    by_day = {d: frame for (d,), frame in bars.group_by("trade_date")}
    empty = pl.DataFrame(schema={"ticker": pl.String, "weight": pl.Float64})
    out = {}
    for i in range(1, len(days)):
        day, book_day = days[i], days[i - 1]
        if book_day not in books:
            continue
        target = books[book_day].select("ticker", pl.col("weight").alias("target"))
        held = books.get(days[i - 2]) if i >= 2 else None
        held = (held if held is not None else empty).select("ticker", pl.col("weight").alias("held"))
        names = target.join(held, on="ticker", how="full", coalesce=True).fill_null(0.0)
        names = names.join(by_day[day].select("ticker", "open", "volume", "sigma", "adv_shares"), on="ticker")
        out[day] = DayTrades(
            *(
                names[c].to_numpy().astype(np.float64)
                for c in ("held", "target", "open", "volume", "sigma", "adv_shares")
            )
        )
    return out


def day_costs(
    trades: DayTrades | None, multiplier: float, held_multiplier: float, nav_usd: float, costs: CostModel
) -> tuple[float, float, float]:
    """(trading cost, overnight financing, turnover) of a day as fractions of NAV: the fund moves from
    ``held_multiplier`` x the held book to ``multiplier`` x the target at the open, then holds it overnight."""
    if trades is None or nav_usd <= 0:
        return 0.0, 0.0, 0.0
    delta = multiplier * trades.target - held_multiplier * trades.held
    traded = np.abs(delta) > 1e-12
    if not traded.any():
        trading = 0.0
    else:
        shares = np.abs(delta[traded]) * nav_usd / trades.open[traded]
        volume = np.maximum(trades.volume[traded], 1.0)
        parts = trade_costs(
            shares,
            trades.open[traded],
            volume,
            trades.sigma[traded],
            np.maximum(trades.adv_shares[traded], 1.0),
            delta[traded] < 0,
            costs,
        )
        trading = float(sum(np.sum(p) for p in parts)) / nav_usd
    short = float(np.clip(-multiplier * trades.target, 0.0, None).sum())
    return trading, costs.daily_borrow_rate * short, float(np.abs(delta).sum())


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


def advance(
    state: RiskState,
    day: date,
    book_return: float,
    history: np.ndarray,
    limits: RiskLimits,
    trades: DayTrades | None = None,
    nav_usd: float = 0.0,
    costs: CostModel | None = None,
) -> dict:
    """Apply today's return at yesterday's multiplier net of the day's trading costs and financing (when
    ``trades`` and a NAV are given), update the drawdown control on that net equity, compute VaR on ``history``."""
    mult = state.next_multiplier
    gross = mult * book_return
    trading, financing, turnover = day_costs(
        trades, mult, state.held_multiplier, nav_usd * state.equity, costs or CostModel()
    )
    port = gross - trading - financing
    state.equity *= 1.0 + port
    state.held_multiplier = mult
    if state.equity >= state.peak:
        state.peak, state.reduced = state.equity, False
    elif 1.0 - state.equity / state.peak > limits.drawdown_threshold:
        state.reduced = True
    state.next_multiplier = limits.reduce_factor if state.reduced else 1.0
    enough = history.size >= 20
    var: dict[str, float | None] = {
        "var_hist_1d": historical_var(history, limits.level) * mult if enough else None,
        "var_param_1d": parametric_var(history, limits.level) * mult if enough else None,
        "var_hist_5d": historical_var(history, limits.level, horizon=5) * mult if enough else None,
        "var_param_5d": parametric_var(history, limits.level, horizon=5) * mult if enough else None,
    }
    row: dict[str, object] = {
        "trade_date": day,
        "book_return": book_return,
        "multiplier": mult,
        "portfolio_return": port,
        "equity": state.equity,
        "peak": state.peak,
        "drawdown": 1.0 - state.equity / state.peak,
        "drawdown_control": state.reduced,
        "gross_multiplier_next": state.next_multiplier,
        **var,
        "es_1d": expected_shortfall(history, limits.level) * mult if enough else None,
        "history_days": int(history.size),
        "gross_return": gross,
        "trading_cost": trading,
        "financing": financing,
        "turnover": turnover,
    }
    breaches = []
    for k, lim in (
        ("var_hist_1d", limits.daily_var_limit),
        ("var_param_1d", limits.daily_var_limit),
        ("var_hist_5d", limits.weekly_var_limit),
        ("var_param_5d", limits.weekly_var_limit),
    ):
        v = var[k]
        if v is not None and v > lim:
            breaches.append(f"{k}={v:.4f} > {lim}")
    if state.reduced:
        breaches.append(
            f"drawdown {row['drawdown']:.3f} > {limits.drawdown_threshold}: exposure x{limits.reduce_factor}"
        )
    row["breaches"] = "; ".join(breaches) or None
    return row
