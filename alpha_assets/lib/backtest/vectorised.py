"""Vectorised fast path of the daily backtest: the same simulation as the event-driven engine, cross-section at once.

Conventions are those of ``alpha_assets.lib.backtest.engine`` (next-open execution of weights dated D, sizing
at the close of D, participation cap with carry-over, costs from ``CostModel``), so results agree with the
engine to floating-point summation order. Sizing depends on equity, equity on costs, costs on fills, so the
path is inherently sequential in time: one numpy step per session over all names (dense session x name
panels), no Python loop over names. The participation cap, its carry-over and the capped-order count are
therefore exact here too, not approximated.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from alpha_assets.lib.backtest.costs import CostModel, daily_financing, trade_costs
from alpha_assets.lib.backtest.data import index_bars, index_target_weights
from alpha_assets.lib.backtest.results import FILL_SCHEMA, PNL_SCHEMA, POSITION_SCHEMA, BacktestResult


def _dense(
    values: np.ndarray, session_idx: np.ndarray, name_idx: np.ndarray, shape, fill: float
) -> np.ndarray:
    panel = np.full(shape, fill, dtype=np.float64)
    panel[session_idx, name_idx] = values
    return panel


def run_vectorised(
    bars: pl.DataFrame,
    target_weights: pl.DataFrame,
    costs: CostModel | None = None,
    initial_capital: float = 1_000_000.0,
) -> BacktestResult:
    """Run the fast path; same inputs, outputs and conventions as ``engine.run_backtest``."""
    costs = costs or CostModel()
    indexed = index_bars(bars, costs)
    weights = index_target_weights(target_weights, indexed)
    sessions, universe, prepared = indexed.sessions, indexed.universe, indexed.frame
    del indexed

    n_sessions, n_names = sessions.len(), universe.len()
    shape = (n_sessions, n_names)
    session_idx, name_idx = prepared["session_idx"].to_numpy(), prepared["name_idx"].to_numpy()
    open_ = _dense(prepared["open"].to_numpy(), session_idx, name_idx, shape, np.nan)
    close = _dense(prepared["close"].to_numpy(), session_idx, name_idx, shape, np.nan)
    volume = _dense(prepared["volume"].to_numpy(), session_idx, name_idx, shape, 0.0)
    sigma = _dense(prepared["sigma"].to_numpy(), session_idx, name_idx, shape, np.nan)
    adv_shares = _dense(prepared["adv_shares"].to_numpy(), session_idx, name_idx, shape, np.nan)
    has_bar = np.zeros(shape, dtype=bool)
    has_bar[session_idx, name_idx] = True
    del prepared, session_idx, name_idx

    w_session = weights["session_idx"].to_numpy()
    weight_panel = _dense(weights["weight"].to_numpy(), w_session, weights["name_idx"].to_numpy(), shape, 0.0)
    is_rebalance = np.zeros(n_sessions, dtype=bool)
    is_rebalance[w_session] = True
    del weights

    cap_rate = costs.max_participation
    cash = float(initial_capital)
    equity = peak = float(initial_capital)
    shares = np.zeros(n_names)
    target = np.zeros(n_names)
    last_close = np.zeros(n_names)

    pnl_cols = {
        name: np.zeros(n_sessions) for name in PNL_SCHEMA if name not in ("trade_date", "capped_orders")
    }
    capped_orders = np.zeros(n_sessions, dtype=np.int64)
    fill_parts: list[tuple[np.ndarray, ...]] = []
    position_parts: list[tuple[np.ndarray, ...]] = []

    for t in range(n_sessions):
        # open: work every live order within the session's participation cap
        order = target - shares
        tradable = np.flatnonzero((order != 0.0) & (volume[t] > 0.0))
        impact = slippage = commission = fee = traded_value = 0.0
        if tradable.size:
            wanted = order[tradable]
            session_volume = volume[t, tradable]
            if cap_rate is None:
                completes = np.ones(tradable.size, dtype=bool)
                filled = wanted
            else:
                cap = cap_rate * session_volume
                completes = np.abs(wanted) <= cap
                filled = np.where(completes, wanted, np.copysign(cap, wanted))
            abs_filled = np.abs(filled)
            price = open_[t, tradable]
            fill_impact, fill_slippage, fill_commission, fill_fee = trade_costs(
                abs_filled,
                price,
                session_volume,
                sigma[t, tradable],
                adv_shares[t, tradable],
                filled < 0.0,
                costs,
            )
            shares[tradable] = np.where(completes, target[tradable], shares[tradable] + filled)
            fill_value = abs_filled * price
            fill_total = fill_impact + fill_slippage + fill_commission + fill_fee
            cash -= float(np.sum(filled * price)) + float(np.sum(fill_total))
            impact, slippage = float(np.sum(fill_impact)), float(np.sum(fill_slippage))
            commission, fee = float(np.sum(fill_commission)), float(np.sum(fill_fee))
            traded_value = float(np.sum(fill_value))
            capped_orders[t] = int(tradable.size - np.count_nonzero(completes))
            fill_parts.append(
                (
                    np.full(tradable.size, t),
                    tradable,
                    filled,
                    price,
                    fill_impact,
                    fill_slippage,
                    fill_commission,
                    fill_fee,
                )
            )

        # close: mark, pay financing for the overnight hold, record
        if not costs.carry_unfilled:
            target = shares.copy()
        last_close = np.where(has_bar[t], close[t], last_close)
        market_value = shares * last_close
        short_value = float(np.sum(np.maximum(-market_value, 0.0)))
        financing = daily_financing(short_value, cash, costs)
        cash -= financing
        long_short = float(np.sum(market_value))
        gross = float(np.sum(np.abs(market_value)))
        previous, equity = equity, cash + long_short
        peak = max(peak, equity)
        net_pnl = equity - previous
        trading_costs = impact + slippage + commission + fee
        row = pnl_cols
        row["equity"][t] = equity
        row["gross_pnl"][t] = net_pnl + trading_costs + financing
        row["impact_cost"][t], row["slippage_cost"][t] = impact, slippage
        row["commission"][t], row["fee"][t] = commission, fee
        row["financing"][t] = financing
        row["total_cost"][t] = trading_costs + financing
        row["net_pnl"][t] = net_pnl
        row["return"][t] = net_pnl / previous
        row["traded_value"][t] = traded_value
        row["turnover"][t] = traded_value / previous
        row["gross_exposure"][t] = gross / equity
        row["net_exposure"][t] = long_short / equity
        row["drawdown"][t] = equity / peak - 1.0
        held = np.flatnonzero(shares)
        position_parts.append(
            (np.full(held.size, t), held, shares[held], market_value[held], market_value[held] / equity)
        )

        # signal: weights decided at this close become live target shares for the next open
        if is_rebalance[t]:
            session_weights = weight_panel[t]
            unpriced = (session_weights != 0.0) & ~(last_close > 0.0)
            if unpriced.any():
                ticker = universe[int(np.flatnonzero(unpriced)[0])]
                raise ValueError(f"{sessions[t]}: weight for {ticker} before it has any close")
            target = np.divide(
                session_weights * equity, last_close, out=np.zeros(n_names), where=last_close > 0.0
            )

    pnl = pl.DataFrame({"trade_date": sessions, **pnl_cols, "capped_orders": capped_orders}).select(
        [pl.col(name).cast(dtype) for name, dtype in PNL_SCHEMA.items()]
    )
    return BacktestResult(
        fills=_fills_frame(fill_parts, sessions, universe),
        positions=_positions_frame(position_parts, sessions, universe),
        pnl=pnl,
        initial_capital=float(initial_capital),
    )


def _concat(parts: list[tuple[np.ndarray, ...]], width: int) -> list[np.ndarray]:
    if not parts:
        return [np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)] + [np.zeros(0)] * (width - 2)
    return [np.concatenate([part[i] for part in parts]) for i in range(width)]


def _fills_frame(parts, sessions: pl.Series, universe: pl.Series) -> pl.DataFrame:
    t_idx, n_idx, filled, price, impact, slippage, commission, fee = _concat(parts, 8)
    frame = pl.DataFrame(
        {
            "trade_date": sessions.gather(t_idx),
            "ticker": universe.gather(n_idx),
            "filled": filled,
            "price": price,
            "impact_cost": impact,
            "slippage_cost": slippage,
            "commission": commission,
            "fee": fee,
        }
    )
    return frame.select(
        "trade_date",
        "ticker",
        pl.when(pl.col("filled") > 0.0).then(pl.lit("buy")).otherwise(pl.lit("sell")).alias("side"),
        pl.col("filled").abs().alias("shares"),
        "price",
        "impact_cost",
        "slippage_cost",
        "commission",
        "fee",
    ).cast(FILL_SCHEMA)  # type: ignore[arg-type]  # polars: cast()'s Mapping key is a union (see portfolio.daily)


def _positions_frame(parts, sessions: pl.Series, universe: pl.Series) -> pl.DataFrame:
    t_idx, n_idx, held, market_value, weight = _concat(parts, 5)
    return pl.DataFrame(
        {
            "trade_date": sessions.gather(t_idx),
            "ticker": universe.gather(n_idx),
            "shares": held,
            "market_value": market_value,
            "weight": weight,
        },
        schema=POSITION_SCHEMA,
    )
