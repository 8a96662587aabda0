"""Output tables of a backtest, identical in schema for the event-driven engine and the vectorised fast path."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

FILL_SCHEMA: dict[str, pl.DataType] = {
    "trade_date": pl.Date(),
    "ticker": pl.String(),
    "side": pl.String(),  # "buy" | "sell"
    "shares": pl.Float64(),  # absolute filled shares
    "price": pl.Float64(),  # reference price (session open); costs are charged on top
    "impact_cost": pl.Float64(),
    "slippage_cost": pl.Float64(),
    "commission": pl.Float64(),
    "fee": pl.Float64(),
}

POSITION_SCHEMA: dict[str, pl.DataType] = {
    "trade_date": pl.Date(),
    "ticker": pl.String(),
    "shares": pl.Float64(),  # signed, at the close
    "market_value": pl.Float64(),  # shares * last close
    "weight": pl.Float64(),  # market_value / equity at the close
}

PNL_SCHEMA: dict[str, pl.DataType] = {
    "trade_date": pl.Date(),
    "equity": pl.Float64(),  # at the close, after financing
    "gross_pnl": pl.Float64(),  # mark-to-market pnl before trading costs and financing
    "impact_cost": pl.Float64(),
    "slippage_cost": pl.Float64(),
    "commission": pl.Float64(),
    "fee": pl.Float64(),
    "financing": pl.Float64(),  # net financing paid for the overnight hold (negative = earned)
    "total_cost": pl.Float64(),  # trading costs + financing
    "net_pnl": pl.Float64(),  # equity change over the session
    "return": pl.Float64(),  # net_pnl / previous equity
    "traded_value": pl.Float64(),  # sum of |shares| * price over fills
    "turnover": pl.Float64(),  # traded_value / previous equity (buys + sells)
    "gross_exposure": pl.Float64(),  # sum |market_value| / equity
    "net_exposure": pl.Float64(),  # sum market_value / equity
    "drawdown": pl.Float64(),  # equity / running peak (incl. initial capital) - 1
    "capped_orders": pl.Int64(),  # orders cut by the participation cap that session
}


@dataclass(frozen=True)
class BacktestResult:
    """Fills, end-of-day positions and the daily pnl of one backtest run."""

    fills: pl.DataFrame
    positions: pl.DataFrame
    pnl: pl.DataFrame
    initial_capital: float
