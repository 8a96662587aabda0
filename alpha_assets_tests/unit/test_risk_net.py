"""The risk report's equity is the fund's NAV after trading costs and financing (issue 20 #2): a book that earns
nothing before costs but trades heavily loses money, and the drawdown control fires on that loss."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from alpha_assets.lib.backtest.costs import CostModel
from alpha_assets.lib.risk import RiskLimits
from alpha_assets.lib.risk_state import RiskState, advance, book_returns, day_costs, day_trades

DAYS = [date(2026, 1, 5) + timedelta(days=i) for i in range(12)]
NAV = 10_000_000.0


def _flat_prices(volume: float = 100_000.0) -> pl.DataFrame:
    """Two names whose price never moves: the book's return before costs is exactly zero every day."""
    return pl.DataFrame(
        [(d, t, 100.0, 100.0, volume) for d in DAYS for t in ("AAA", "BBB")],
        schema={
            "trade_date": pl.Date,
            "ticker": pl.String,
            "open": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Float64,
        },
        orient="row",
    )


def _flipping_book() -> pl.DataFrame:
    """Long one name and short the other, swapping every day: 200% of NAV traded a day."""
    rows = []
    for i, d in enumerate(DAYS):
        sign = 1.0 if i % 2 == 0 else -1.0
        rows += [(d, "AAA", 0.5 * sign), (d, "BBB", -0.5 * sign)]
    return pl.DataFrame(
        rows, schema={"trade_date": pl.Date, "ticker": pl.String, "weight": pl.Float64}, orient="row"
    )


def _run(weights: pl.DataFrame, prices: pl.DataFrame, limits: RiskLimits, with_costs: bool) -> list[dict]:
    costs = CostModel()
    br = book_returns(weights, prices)
    trades = day_trades(weights, prices, costs)
    state, rows = RiskState(), []
    returns = br["book_return"].to_numpy()
    for i, day in enumerate(br["trade_date"].to_list()):
        rows.append(
            advance(
                state,
                day,
                float(returns[i]),
                returns[: i + 1],
                limits,
                trades.get(day) if with_costs else None,
                NAV,
                costs,
            )
        )
    return rows


def test_a_book_that_earns_nothing_before_costs_loses_its_trading_costs():
    prices, weights = _flat_prices(), _flipping_book()
    rows = _run(weights, prices, RiskLimits(drawdown_threshold=0.10), with_costs=True)
    assert all(r["gross_return"] == 0.0 for r in rows)
    traded = [r for r in rows[1:] if r["turnover"] > 0]
    assert traded and all(r["trading_cost"] > 0 for r in traded)
    # 100% of NAV per name at $100 is 100,000 shares = the whole session's volume: 1% slippage + 5 bps commission
    # (+0.2 bps on the sell); sigma is 0 on a flat price, so no impact.
    flip = traded[1]
    assert flip["turnover"] == 2.0
    expected = (2 * 0.01 + 2 * 0.0005 + 0.00002) * 1.0  # on 100% of NAV per leg, at equity ~1
    assert abs(flip["trading_cost"] - expected) / expected < 0.15
    assert (
        rows[-1]["equity"] < 1.0
        and abs(
            rows[-1]["portfolio_return"]
            + rows[-1]["trading_cost"]
            + rows[-1]["financing"]
            - rows[-1]["gross_return"]
        )
        < 1e-15
    )


def test_the_drawdown_control_fires_on_the_net_loss_a_gross_view_never_sees():
    prices, weights = _flat_prices(), _flipping_book()
    limits = RiskLimits(drawdown_threshold=0.10, reduce_factor=0.5)
    gross_only = _run(weights, prices, limits, with_costs=False)
    net = _run(weights, prices, limits, with_costs=True)
    assert not any(r["drawdown_control"] for r in gross_only)  # before costs the book never loses
    fired = [i for i, r in enumerate(net) if r["drawdown_control"]]
    assert fired, [round(r["drawdown"], 4) for r in net]
    first = fired[0]
    assert net[first]["drawdown"] > 0.10 and net[first]["gross_multiplier_next"] == 0.5
    assert net[first + 1]["multiplier"] == 0.5  # the next day trades the de-risked book
    # De-risking itself trades: the day the multiplier drops, the book moves from 1x to 0.5x of the new target.
    assert net[first + 1]["turnover"] < net[first]["turnover"]


def test_shorts_pay_the_borrow_rate_overnight():
    costs = CostModel(borrow_rate_annual=0.05)
    prices = _flat_prices()
    weights = pl.DataFrame(
        [(d, t, w) for d in DAYS for t, w in (("AAA", 0.5), ("BBB", -0.5))],
        schema={"trade_date": pl.Date, "ticker": pl.String, "weight": pl.Float64},
        orient="row",
    )
    trades = day_trades(weights, prices, costs)
    trading, financing, turnover = day_costs(trades[DAYS[3]], 1.0, 1.0, NAV, costs)
    assert trading == 0.0 and turnover == 0.0  # the same book held: nothing traded
    assert np.isclose(financing, 0.5 * 0.05 / 252)
